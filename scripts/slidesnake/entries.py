"""One table of model inputs per dataset, whatever stores them: tiles in Zarr stores or image files.

An *entries* table has one row per model input with ``item`` (the slide id, or
the image path), ``patient_id``, ``split``, ``fold``, ``label`` and ``source``
(the tile store, or the image file); tile entries also have their grid position
``row``, ``col`` and target-pixel corner ``y``, ``x``. Training, prediction,
embedding and evaluation take this one shape; :func:`slidesnake.pixels.pixel_source` turns a
table into what the model's input pipeline reads. This module owns the table (its columns, its
reader; ids are text) and is the only one that tells slide datasets and patch-folder datasets
apart; reading pixels lives in :mod:`slidesnake.pixels`, so that what only reads the table (the
reports) does not depend on the tile store's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

#: Columns of every entries table.
ENTRY_COLUMNS = ("item", "patient_id", "split", "fold", "label", "source")
#: Further columns of tile entries.
TILE_COLUMNS = ("row", "col", "y", "x")


def is_tiles(entries: pd.DataFrame) -> bool:
    """Whether the entries are tiles of slides (else images)."""
    return set(TILE_COLUMNS) <= set(entries.columns)


def entry_keys(entries: pd.DataFrame) -> list[str]:
    """The columns that identify an entry: ``item`` and, for tiles, the corner in target pixels."""
    return ["item", "y", "x"] if is_tiles(entries) else ["item"]


def unit(entries: pd.DataFrame) -> str:
    """What one entry is, in words: ``tiles`` or ``images``."""
    return "tiles" if is_tiles(entries) else "images"


def levels(entries: pd.DataFrame) -> tuple[str, ...]:
    """The levels a dataset is evaluated at: tile, slide and patient; or image and patient."""
    return ("tile", "slide", "patient") if is_tiles(entries) else ("image", "patient")


def build_entries(
    split_table: pd.DataFrame,
    *,
    classes: Sequence[str],
    slides: Sequence[str],
    label_tsvs: Sequence[str],
    stores: Sequence[str],
) -> pd.DataFrame:
    """The labelled entries of a dataset, from its split table (and, for slides, its tile labels).

    Parameters
    ----------
    split_table : pandas.DataFrame
        ``results/splits/{dataset}.tsv``: one row per item with ``patient_id``,
        ``label``, ``split`` and ``fold``.
    classes : sequence of str
        The dataset's classes; entries of other labels (or none) are left out.
    slides, label_tsvs, stores : sequence of str
        For a slide dataset, its slide ids with their tile label tables and tile
        stores (aligned); all empty for a patch-folder dataset.

    Returns
    -------
    pandas.DataFrame
        The entries table.
    """
    splits = split_table.set_index("item")
    if not slides:
        images = split_table[split_table["label"].isin(classes)]
        return images.assign(source=images["item"])[list(ENTRY_COLUMNS)].reset_index(drop=True)
    parts = []
    for slide_id, label_tsv, store in zip(slides, label_tsvs, stores, strict=True):
        tiles = pd.read_csv(label_tsv, sep="\t", keep_default_na=False)
        tiles = tiles[tiles["label"].isin(classes)]
        row = splits.loc[slide_id]
        parts.append(
            tiles.assign(
                item=slide_id,
                patient_id=row["patient_id"],
                split=row["split"],
                fold=row["fold"],
                source=store,
            )[[*ENTRY_COLUMNS, *TILE_COLUMNS]]
        )
    return pd.concat(parts, ignore_index=True)


#: Columns of an entries table read as text whatever they look like (``007`` stays ``007``).
TEXT_COLUMNS = ("item", "patient_id", "split", "label", "source")


def read_entries(path: str | Path) -> pd.DataFrame:
    """Read an entries table written by the ``entries`` rule (ids and labels as text)."""
    return pd.read_csv(path, sep="\t", keep_default_na=False, dtype=dict.fromkeys(TEXT_COLUMNS, str))
