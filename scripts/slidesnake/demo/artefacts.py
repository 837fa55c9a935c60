"""Artefacts of a demo slide that QC must flag: a pen mark, a tissue fold, an out-of-focus region.

(The fourth, a slide almost without tissue, is a layout: see :mod:`.layout`.) Each is a 0-1 weight
on the generated grid that :func:`~.render.render` lays over the stained image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: Optical density (R, G, B) of green marker ink: it absorbs red and blue.
GREEN_INK_OD = (1.3, 0.3, 1.0)
#: Width of the pen stroke and of the fold (generated pixels, 0.5 um).
PEN_WIDTH = 80.0
FOLD_WIDTH = 140.0


@dataclass(frozen=True, kw_only=True)
class ArtefactLayers:
    """Weights (0-1, generated grid) of a slide's artefacts; None where it has none."""

    fold: np.ndarray | None = None
    out_of_focus: np.ndarray | None = None
    pen: np.ndarray | None = None
    pen_od: tuple[float, float, float] = GREEN_INK_OD


def _soft(distance: np.ndarray, half_width: float, edge: float = 4.0) -> np.ndarray:
    return np.clip((half_width - distance) / edge + 0.5, 0.0, 1.0).astype(np.float32)


def _tissue_point(rng: np.random.Generator, tissue: np.ndarray) -> tuple[float, float]:
    """A point deep inside the tissue (row, column)."""
    depth = ndimage.distance_transform_edt(tissue)
    candidates = np.argwhere(depth >= 0.6 * depth.max())
    row, col = candidates[int(rng.integers(len(candidates)))]
    return float(row), float(col)


def _distance_to_path(shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    h, w = shape
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    seeds = np.ones(shape, bool)
    seeds[rows[inside].astype(np.int64), cols[inside].astype(np.int64)] = False
    return ndimage.distance_transform_edt(seeds)


def artefact_layers(rng: np.random.Generator, kind: str | None, tissue: np.ndarray) -> ArtefactLayers:
    """The weights of one artefact (``pen``, ``fold``, ``blur``) on a slide whose tissue mask is `tissue`.

    A pen mark is an arc drawn around part of the tissue, crossing it and the glass, as a
    pathologist circles a region; a fold is a band across the tissue where the section lies
    doubled; an out-of-focus region is a disc covering about 40% of the tissue.
    """
    if kind not in ("pen", "fold", "blur"):
        return ArtefactLayers()
    h, w = tissue.shape
    cy, cx = _tissue_point(rng, tissue)
    if kind == "pen":
        radius = 0.3 * min(h, w)
        start = rng.uniform(0, 2 * math.pi)
        theta = start + np.linspace(0.0, 1.3 * math.pi, int(4 * radius))
        rows = cy + radius * np.sin(theta) * rng.uniform(0.8, 1.0)
        cols = cx + 1.3 * radius * np.cos(theta)
        return ArtefactLayers(pen=_soft(_distance_to_path((h, w), rows, cols), PEN_WIDTH / 2))
    if kind == "fold":
        angle = rng.uniform(0, math.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        across = np.abs(-(xx - cx) * math.sin(angle) + (yy - cy) * math.cos(angle))
        return ArtefactLayers(fold=_soft(across, FOLD_WIDTH / 2) * tissue)
    depth = ndimage.distance_transform_edt(~tissue)  # distance from tissue, 0 inside
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    centre_distance = np.hypot(yy - cy, xx - cx)
    radius = float(np.sqrt(tissue.sum() / 2.5 / math.pi))
    return ArtefactLayers(out_of_focus=_soft(centre_distance, radius, edge=20.0) * (depth < 8))
