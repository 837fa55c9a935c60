"""A slide's predictions as a GeoJSON FeatureCollection that QuPath imports (File > Import objects).

Coordinates are level-0 pixels (x = column, y = row), as QuPath expects; properties follow QuPath's
own GeoJSON (``objectType``, ``classification`` with ``name`` and ``color``, ``measurements`` as a
name -> number mapping). The file holds one ``tile`` object per predicted tile, classified by its
most probable class with every class probability as a measurement, and one ``annotation`` per
connected region of map cells whose positive-class probability reaches the threshold (holes kept,
area in um^2). Features are written one at a time, so a gigapixel slide never sits in memory as JSON.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from scipy.ndimage import find_objects
from skimage.measure import label as connected_components

from ..io import atomic_path
from ..store.maps import MapGeometry
from .colours import class_colours

_NAMESPACE = uuid.UUID("1b2c6a52-4a0e-4d9e-8f0f-6a7c2d1e9b3a")


def _feature(identity: str, geometry: shapely.Geometry, properties: dict) -> str:
    """One GeoJSON feature, its id a UUID derived from ``identity`` (the same on every run)."""
    return json.dumps(
        {
            "type": "Feature",
            "id": str(uuid.uuid5(_NAMESPACE, identity)),
            "geometry": shapely.geometry.mapping(geometry),
            "properties": properties,
        },
        separators=(",", ":"),
    )


def _tile_features(
    ys: Sequence[float],
    xs: Sequence[float],
    probabilities: np.ndarray,
    *,
    side: float,
    identity: str,
    classes: Sequence[str],
    names: Mapping[str, str],
) -> Iterator[str]:
    """The tile features: squares of ``side`` level-0 pixels at corners ``xs``, ``ys``, classified.

    Each line is what :func:`_feature` writes for the same tile (the same keys, numbers and order:
    a test holds them equal), filled into a template per class, as a slide has tens of thousands.
    """
    colours = class_colours(classes)
    classified = [
        json.dumps({"name": names.get(c, c), "color": list(colours[c])}, separators=(",", ":"))
        for c in classes
    ]
    keys = [json.dumps(f"P({c})") for c in classes]
    best = probabilities.argmax(axis=1)  # empty for no tiles
    for y, x, row, b in zip(ys, xs, probabilities.tolist(), best.tolist(), strict=True):
        x1, y1 = x + side, y + side
        ring = f"[[{x1!r},{y!r}],[{x1!r},{y1!r}],[{x!r},{y1!r}],[{x!r},{y!r}],[{x1!r},{y!r}]]"
        measurements = ",".join(f"{key}:{round(p, 5)!r}" for key, p in zip(keys, row, strict=True))
        yield (
            f'{{"type":"Feature","id":"{uuid.uuid5(_NAMESPACE, f"{identity}/tile/{y}/{x}")}",'
            f'"geometry":{{"type":"Polygon","coordinates":[{ring}]}},"properties":{{"objectType":"tile","classification":{classified[b]},'
            f'"measurements":{{{measurements}}}}}}}'
        )


def positive_regions(
    positive: np.ndarray, geometry: MapGeometry, threshold: float
) -> list[tuple[shapely.Polygon, float, int]]:
    """Connected regions (4-connected map cells) whose probability reaches ``threshold``.

    Parameters
    ----------
    positive : numpy.ndarray
        (row, col) positive-class map, NaN outside tissue.
    geometry : MapGeometry
        Where the cells lie (level-0 pixels).
    threshold : float
        The probability a cell needs.

    Returns
    -------
    list of (shapely.Polygon, float, int)
        Per region: its polygon in level-0 pixels (holes kept), its mean probability, its cells.
    """
    called = np.nan_to_num(positive, nan=0.0) >= threshold
    if not called.any():  # also an excluded slide's empty map, where find_objects has nothing to scan
        return []
    components = connected_components(called, connectivity=1)
    side = geometry.cell_level0
    regions = []
    for k, (row_span, col_span) in enumerate(find_objects(components), start=1):  # each region's box
        rows, cols = np.nonzero(components[row_span, col_span] == k)
        rows, cols = rows + row_span.start, cols + col_span.start
        boxes = shapely.box(cols * side, rows * side, (cols + 1) * side, (rows + 1) * side)
        polygon = shapely.coverage_union_all(boxes)
        regions.append((polygon, float(positive[rows, cols].mean()), len(rows)))
    return regions


def qupath_names(labels: Mapping[str, Any] | None) -> dict[str, str]:
    """Class -> the QuPath class it is annotated as (the first of ``labels: annotation_classes`` mapping to
    it), so exported objects carry QuPath's names (``Tumor``); none for a home without annotations."""
    names: dict[str, str] = {}
    for qupath_class, cls in ((labels or {}).get("annotation_classes") or {}).items():
        names.setdefault(cls, qupath_class)
    return names


def write_qupath_geojson(
    tiles: pd.DataFrame,
    positive_map: np.ndarray,
    path: str | Path,
    *,
    slide_id: str,
    geometry: MapGeometry,
    classes: Sequence[str],
    positive_class: str,
    threshold: float,
    mpp: tuple[float, float],
    names: Mapping[str, str],
) -> int:
    """Write the QuPath GeoJSON of one slide; return the number of tile features.

    Parameters
    ----------
    tiles : pandas.DataFrame
        The predicted tiles: ``y``, ``x`` (target pixels) and ``p_<class>`` per class.
    positive_map : numpy.ndarray
        (row, col) positive-class map (for the regions).
    path : str or Path
        The ``.geojson`` to write.
    slide_id : str
        For the objects' ids.
    geometry : MapGeometry
        The map cells and the tiling plan (level-0 pixels per target pixel, tile size).
    classes : sequence of str
        The model's classes.
    positive_class : str
        The class of the regions.
    threshold : float
        Probability a region's cells reach.
    mpp : tuple of float
        Level-0 microns per pixel (x, y), for region areas.
    names : Mapping
        Class -> the QuPath class it was annotated as (``Tumor`` for ``tumor`` under
        ``annotation_classes: {Tumor: tumor}``), for the classifications; other classes keep their name.

    Returns
    -------
    int
        Tile features written.
    """
    colours = class_colours(classes)
    scale = geometry.plan.level0_per_target
    side = geometry.plan.tile_size * scale
    probabilities = tiles[[f"p_{c}" for c in classes]].to_numpy(float)
    xs, ys = (tiles["x"].to_numpy(float) * scale).tolist(), (tiles["y"].to_numpy(float) * scale).tolist()
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        out.write('{"type":"FeatureCollection","features":[\n')
        first = True
        tile_lines = _tile_features(
            ys, xs, probabilities, side=side, identity=slide_id, classes=classes, names=names
        )
        for line in tile_lines:
            out.write(("" if first else ",\n") + line)
            first = False
        for n, (polygon, mean, cells) in enumerate(positive_regions(positive_map, geometry, threshold)):
            properties = {
                "objectType": "annotation",
                "name": f"{positive_class} region {n + 1}",
                "classification": {
                    "name": names.get(positive_class, positive_class),
                    "color": list(colours[positive_class]),
                },
                "measurements": {
                    "Area um^2": round(float(polygon.area) * mpp[0] * mpp[1], 1),
                    f"Mean P({positive_class})": round(mean, 5),
                    "Map cells": cells,
                },
            }
            out.write(("" if first else ",\n") + _feature(f"{slide_id}/region/{n}", polygon, properties))
            first = False
        out.write("\n]}\n")
    return len(tiles)
