"""One table of model inputs per dataset, whatever stores them: tiles in Zarr stores or image files.

An *entries* table has one row per model input with ``item`` (the slide id, or
the image path), ``patient_id``, ``split``, ``fold``, ``label`` and ``source``
(the tile store, or the image file); tile entries also have their grid position
``row``, ``col`` and target-pixel corner ``y``, ``x``. Training, prediction,
embedding and evaluation take this one shape; :func:`slidesnake.pixels.pixel_source` turns a
table into what the model's input pipeline reads. This module owns the table (its columns, its
reader; ids are text), the tile label tables entries are built from and the prediction tables keyed like
entries, and is the only one that tells slide datasets and patch-folder datasets
apart; reading pixels lives in :mod:`slidesnake.pixels`, so that what only reads the table (the
reports) does not depend on the tile store's code.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .tables import StoredTable

#: Columns of every entries table.
ENTRY_COLUMNS = ("item", "patient_id", "split", "fold", "label", "source")
#: Further columns of tile entries.
TILE_COLUMNS = ("row", "col", "y", "x")

#: ``results/entries/{dataset}.tsv`` (rule ``entries``; a cohort's under its name): the labelled model
#: inputs, tiles (with :data:`TILE_COLUMNS`) or images.
ENTRIES_TABLE = StoredTable(
    paths=("results/entries/{name}.tsv",),
    columns={
        "item": "text",
        "patient_id": "text",
        "split": "text",
        "fold": "number",
        "label": "text",
        "source": "text",
        **dict.fromkeys(TILE_COLUMNS, "number"),
    },
    optional=frozenset(TILE_COLUMNS),
)

#: ``results/labels/{dataset}/{slide}.tsv`` (rule ``label_tiles``): a slide's tile index, the share of each
#: tile in each class's regions (``fraction_<class>``, with annotations) and its ``label`` (empty: none).
TILE_LABELS_TABLE = StoredTable(
    paths=("results/labels/{dataset}/{slide}.tsv",),
    columns={
        "slide_id": "text",
        **dict.fromkeys(("row", "col", "y", "x", "x0", "y0", "tissue_fraction", "sharpness"), "number"),
        "content_hash": "number",
        "label": "text",
    },
    more="number",
    more_prefix="fraction_",
)

#: A prediction table (rules ``predict``, ``predict_external``, ``predict_patches``): a slide's tiles
#: (grid position, ``aligned`` with the model's tiling, level-0 corner) or a patch dataset's images
#: (patient, label, split), with the probability of each class (``p_<class>``).
PREDICTIONS_TABLE = StoredTable(
    paths=(
        "results/predictions/{slide}.tsv",
        "results/cohorts/{cohort}/predictions/{slide}.tsv",
        "results/predictions/{dataset}/images.tsv",
    ),
    columns={
        "item": "text",
        "patient_id": "text",
        "label": "text",
        "split": "text",
        **dict.fromkeys(TILE_COLUMNS, "number"),
        "aligned": "bool",
        "x0": "number",
        "y0": "number",
    },
    optional=frozenset(("patient_id", "label", "split", *TILE_COLUMNS, "aligned", "x0", "y0")),
    more="number",
    more_prefix="p_",
)

#: ``oof.tsv`` of a fold model (rule ``train_fold``; ``results/crossval/{dataset}/oof.tsv`` joins the
#: folds'): the entries of the fold it never trained on, with the probability of each class (``p_<class>``).
OOF_TABLE = StoredTable(
    paths=("results/models/{dataset}/folds/{fold}/oof.tsv", "results/crossval/{dataset}/oof.tsv"),
    columns={column: kind for column, kind in ENTRIES_TABLE.columns.items() if column != "source"},
    optional=frozenset(TILE_COLUMNS),
    more="number",
    more_prefix="p_",
)


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
        tiles = TILE_LABELS_TABLE.read(label_tsv)
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
