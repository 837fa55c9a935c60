"""Label tiles from region annotations (:mod:`slidesnake.annotation_files` reads them) or slide labels.

Annotation coordinates are level-0 pixels (x = column, y = row), as QuPath and
ASAP write them.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import shapely

from .annotation_files import regions_on_slide
from .errors import AnnotationError, SlideError
from .settings import LabelSettings
from .store.tiles import TileStore

log = logging.getLogger(__name__)


def level0_extent(store: TileStore) -> tuple[float, float]:
    """A slide's level-0 width and height in pixels, from its store's tiling plan (0 x 0: excluded)."""
    plan = store.plan
    return plan.target_width * plan.level0_per_target, plan.target_height * plan.level0_per_target


def matches(name: str, patterns: Sequence[str]) -> bool:
    """Whether an annotation class matches one of the glob patterns (case-sensitive)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def tile_labels(
    index: pd.DataFrame,
    *,
    tile_size_level0: float,
    regions: list[tuple[str, shapely.Geometry]],
    labels: LabelSettings,
    slide_id: str,
    annotation_path: str | Path,
) -> pd.DataFrame:
    """Give each tile the class whose regions cover enough of it.

    Parameters
    ----------
    index : pandas.DataFrame
        Tile index with ``x0``, ``y0`` (level-0 top-left corners).
    tile_size_level0 : float
        Tile side in level-0 pixels.
    regions : list of (str, shapely.Geometry)
        Annotation class names and regions, from :func:`read_annotations`.
    labels : LabelSettings
        ``annotation_classes`` (annotation class name -> dataset class),
        ``unannotated`` (class of tiles no region touches; None leaves them
        unlabelled) and ``min_fraction`` (a tile takes a class when at least
        this fraction of its area lies in that class's regions; tiles partly
        covered, but less, stay unlabelled), ``ignore`` (glob patterns of
        annotation classes whose regions are dropped, e.g. ``Region*``) and
        ``exclude`` (glob patterns of classes whose regions leave out every tile
        at least ``min_fraction`` inside them, e.g. QuPath's ``Ignore*`` or pen marks).
    slide_id, annotation_path : str
        For error messages.

    Returns
    -------
    pandas.DataFrame
        ``index`` with one ``fraction_<class>`` column per class and ``label``
        (empty string for excluded tiles).

    Raises
    ------
    AnnotationError
        When an annotation's class is not in ``annotation_classes``.
    """
    class_map, unannotated = labels.annotation_classes, labels.unannotated
    excluded = [geom for name, geom in regions if matches(name, labels.exclude)]
    regions = [(n, g) for n, g in regions if not matches(n, labels.ignore) and not matches(n, labels.exclude)]
    unknown = sorted({name for name, _ in regions} - set(class_map))
    if unknown:
        problem = (
            f"annotation classes {unknown} are not in the dataset's 'annotation_classes' "
            f"{sorted(class_map)}; "
            "map them there, or leave them out with 'labels: ignore' or 'labels: exclude'"
        )
        raise AnnotationError(slide_id, annotation_path, problem)
    x0 = index["x0"].to_numpy(float)
    y0 = index["y0"].to_numpy(float)
    boxes = shapely.box(x0, y0, x0 + tile_size_level0, y0 + tile_size_level0)
    area = tile_size_level0**2
    labelled = index.copy()
    classes = sorted(set(class_map.values()))
    fractions = np.zeros((len(index), len(classes)))
    for k, cls in enumerate(classes):
        parts = [geom for name, geom in regions if class_map[name] == cls]
        if parts:
            region = shapely.union_all(parts)
            fractions[:, k] = shapely.area(shapely.intersection(boxes, region)) / area
        labelled[f"fraction_{cls}"] = fractions[:, k].round(4)
    best = fractions.argmax(axis=1) if classes else np.zeros(len(index), int)
    best_fraction = fractions.max(axis=1) if classes else np.zeros(len(index))
    covered = fractions.sum(axis=1) if classes else np.zeros(len(index))
    assigned = np.full(len(index), "", dtype=object)
    if classes:
        take = best_fraction >= labels.min_fraction
        assigned[take] = np.asarray(classes, dtype=object)[best[take]]
    if unannotated is not None:
        assigned[covered == 0] = unannotated
    if excluded:
        inside = shapely.area(shapely.intersection(boxes, shapely.union_all(excluded))) / area
        assigned[inside >= labels.min_fraction] = ""
    labelled["label"] = assigned
    return labelled


def slide_tile_labels(
    store: TileStore,
    labels: LabelSettings,
    *,
    regions: Sequence[tuple[str, shapely.Geometry]],
    annotation_path: str | None,
    slide_label: str | None,
) -> pd.DataFrame:
    """A label per tile of a slide's store, from its annotations or from its slide label.

    Parameters
    ----------
    store : TileStore
        The slide's tiles (their index: level-0 corners and content hashes).
    labels : LabelSettings
        The labels of the slide's dataset (``source``: annotations or slide).
    regions : sequence of (str, shapely.Geometry)
        The slide's annotation regions, as :func:`~slidesnake.annotation_files.read_annotations`
        reads its file (empty: no file, every tile is ``unannotated``); regions none of which lies
        on the slide are refused (:func:`~slidesnake.annotation_files.regions_on_slide`).
    annotation_path : str or None
        The file the regions come from, for messages.
    slide_label : str or None
        The sheet's ``label`` of the slide, for ``source: slide``.

    Returns
    -------
    pandas.DataFrame
        ``slide_id``, the tile index and ``label`` (with ``fraction_<class>`` columns for annotations).

    Raises
    ------
    AnnotationError
        When the annotations have classes the dataset does not map, or none of their regions lies
        on the slide.
    SlideError
        When the slide label is not one of the dataset's classes.
    """
    slide_id, index = store.slide_id, store.index
    if labels.source == "annotations":
        width, height = level0_extent(store)
        problem = regions_on_slide(
            regions, width=width, height=height, slide_id=slide_id, annotation_path=annotation_path or ""
        )
        if problem:
            raise AnnotationError(slide_id, annotation_path or "", problem)
        table = tile_labels(
            index,
            tile_size_level0=store.plan.tile_size_level0,
            regions=list(regions),
            labels=labels,
            slide_id=slide_id,
            annotation_path=annotation_path or "",
        )
    else:
        if slide_label not in labels.classes:
            classes = list(labels.classes)
            problem = f"sheet column 'label' = {slide_label!r} is not one of the dataset's classes {classes}"
            raise SlideError(slide_id, store.attrs["source"], problem)
        table = index.assign(label=slide_label)
    table.insert(0, "slide_id", slide_id)
    return table
