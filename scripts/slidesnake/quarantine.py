"""The slides left out for their annotations: labelled without labels, and the table that says why.

Rule ``label_tiles`` writes one quarantine table per labels folder (:data:`QUARANTINE`: columns
``slide_id`` and ``reason``, both text); rule ``audit`` reads it, so such a slide is ``excluded`` in
``results/slides.tsv`` and thereby out of the splits, training and metrics. This module owns the table
(:data:`QUARANTINED_TABLE`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .annotation_files import read_annotations
from .annotations import slide_tile_labels
from .errors import AnnotationError
from .settings import LabelSettings
from .store.tiles import TileStore
from .tables import StoredTable

log = logging.getLogger(__name__)


#: The table of a labels folder naming the slides quarantined for their annotations (``slide_id``,
#: ``reason``); ``@`` is not allowed in slide ids, so no slide's table has this name.
QUARANTINE = "@quarantine.tsv"


#: A labels folder's quarantine table (rule ``label_tiles``): the slides quarantined and why.
QUARANTINED_TABLE = StoredTable(
    paths=("results/labels/{dataset}/@quarantine.tsv",), columns={"slide_id": "text", "reason": "text"}
)


def quarantine_table(labels_dir: str) -> str:
    """The quarantine table of a labels folder (rule ``label_tiles``)."""
    return str(Path(labels_dir) / QUARANTINE)


def read_quarantine(labels_dirs: Sequence[str]) -> dict[str, str]:
    """Slide -> reason, of the slides the labels folders quarantined (a folder without the table: none)."""
    quarantined = {}
    for folder in labels_dirs:
        path = Path(quarantine_table(folder))
        if path.is_file():
            table = QUARANTINED_TABLE.read(path)
            quarantined.update(zip(table["slide_id"], table["reason"], strict=True))
    return quarantined


def labels_or_quarantine(
    store: TileStore,
    settings: LabelSettings,
    *,
    annotation_path: str | None,
    slide_label: str | None,
    on_bad_slide: str,
) -> tuple[pd.DataFrame, str]:
    """A slide's tile labels, or, when its annotations cannot be used (``skip``), none and why.

    Parameters
    ----------
    store : TileStore
        The slide's tiles.
    settings : LabelSettings
        Its dataset's labels.
    annotation_path, slide_label : str or None
        Its annotation file and sheet ``label`` (see :func:`slidesnake.annotations.slide_tile_labels`).
    on_bad_slide : {'skip', 'fail'}
        Config ``on_bad_slide``: with ``fail`` an unusable annotation file is raised.

    Returns
    -------
    (pandas.DataFrame, str)
        The label table (``slide_id``, the tile index, ``label``: empty for every tile of a
        quarantined slide) and the reason it is quarantined (empty: labelled).
    """
    try:
        regions = (
            read_annotations(annotation_path, store.slide_id)
            if annotation_path and settings.source == "annotations"
            else []
        )
        table = slide_tile_labels(
            store, settings, regions=regions, annotation_path=annotation_path, slide_label=slide_label
        )
    except AnnotationError as err:
        if on_bad_slide == "fail":
            raise
        reason = f"annotations: {err.path}: {err.problem}"
        log.warning("%s: quarantined (config 'on_bad_slide: skip'): %s", store.slide_id, reason)
        table = store.index.assign(label="")
        table.insert(0, "slide_id", store.slide_id)
        return table, reason
    return table, ""
