"""A slide's positive-class probability as a tiled, pyramidal OME-TIFF overlay (napari, QuPath).

The overlay covers exactly the slide's physical extent: its pixel count is the slide's level-0
size divided by about a quarter of a map cell, and its physical pixel size is the slide's extent
divided by that count, so width x pixel size equals the slide's width in microns. Each pixel takes
the map cell under its centre; pixels outside predicted tissue are NaN. The overlay is a few
thousand pixels a side even for a 100,000 px slide, so it is written in bounded memory.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import tifffile

from ..io import atomic_path
from ..store.maps import MapGeometry

#: Overlay pixels per map cell side, about.
PIXELS_PER_CELL = 4
#: Pyramid levels are halved until the longer side is at most this (so even small overlays have one).
SMALLEST_LEVEL = 64


def _step(cell_level0: float) -> float:
    """Level-0 pixels per overlay pixel: a divisor of the cell when the cell is a whole number of pixels."""
    rounded = round(cell_level0)
    if abs(cell_level0 - rounded) < 1e-6 and rounded >= PIXELS_PER_CELL:
        divisors = [d for d in range(1, rounded + 1) if rounded % d == 0 and d <= rounded / PIXELS_PER_CELL]
        return float(max(divisors))
    return max(1.0, cell_level0 / PIXELS_PER_CELL)


def overlay_pixels(
    positive: np.ndarray, geometry: MapGeometry, *, width: int, height: int
) -> tuple[np.ndarray, float, float]:
    """The overlay image of a positive-class map over a slide of ``width`` x ``height`` level-0 pixels.

    Returns
    -------
    tuple of (numpy.ndarray, float, float)
        (row, column) float32 probabilities, and level-0 pixels per overlay pixel in x and y.
    """
    step = _step(geometry.cell_level0)
    columns, rows = max(1, round(width / step)), max(1, round(height / step))
    per_x, per_y = width / columns, height / rows
    cell_col = np.floor((np.arange(columns) + 0.5) * per_x / geometry.cell_level0).astype(int)
    cell_row = np.floor((np.arange(rows) + 0.5) * per_y / geometry.cell_level0).astype(int)
    map_rows, map_cols = positive.shape
    padded = np.full((map_rows + 1, map_cols + 1), np.nan, np.float32)
    padded[:map_rows, :map_cols] = positive
    image = padded[np.minimum(cell_row, map_rows)[:, None], np.minimum(cell_col, map_cols)[None, :]]
    return image, per_x, per_y


def _halve(image: np.ndarray) -> np.ndarray:
    """Mean of 2 x 2 blocks, ignoring NaN (NaN only where a whole block is)."""
    rows, cols = math.ceil(image.shape[0] / 2), math.ceil(image.shape[1] / 2)
    padded = np.full((rows * 2, cols * 2), np.nan, np.float32)
    padded[: image.shape[0], : image.shape[1]] = image
    blocks = padded.reshape(rows, 2, cols, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "mean of empty slice" for all-NaN blocks
        return np.nanmean(blocks, axis=(1, 3)).astype(np.float32)


def write_overlay(
    positive: np.ndarray,
    path: str | Path,
    *,
    geometry: MapGeometry,
    width: int,
    height: int,
    mpp: tuple[float, float],
    name: str,
) -> tuple[int, int]:
    """Write the OME-TIFF overlay of one slide, atomically; return its (rows, columns).

    Parameters
    ----------
    positive : numpy.ndarray
        (row, col) positive-class map, NaN outside tissue.
    path : str or Path
        The ``.ome.tif`` to write.
    geometry : MapGeometry
        The map cells in level-0 pixels.
    width, height : int
        The slide's level-0 size.
    mpp : tuple of float
        Level-0 microns per pixel (x, y).
    name : str
        The image name in the OME metadata (e.g. ``CMU-1 P(tumor)``).
    """
    image, per_x, per_y = overlay_pixels(positive, geometry, width=width, height=height)
    levels = [image]
    while max(levels[-1].shape) > SMALLEST_LEVEL:
        levels.append(_halve(levels[-1]))
    metadata = {
        "axes": "YX",
        "Name": name,
        "PhysicalSizeX": per_x * mpp[0],
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": per_y * mpp[1],
        "PhysicalSizeYUnit": "µm",
    }
    options = {"tile": (256, 256), "compression": "zlib", "photometric": "minisblack"}
    with atomic_path(path) as tmp:
        with tifffile.TiffWriter(tmp, bigtiff=True, ome=True) as tiff:
            tiff.write(levels[0], subifds=len(levels) - 1, metadata=metadata, **options)
            for level in levels[1:]:
                tiff.write(level, subfiletype=1, **options)
    return image.shape
