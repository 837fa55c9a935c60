"""Stitch tile probabilities into a slide-level probability map stored as Zarr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from ..io import atomic_path
from ..wsi import TilePlan

MAP = "probability"


def probability_grid(tiles: pd.DataFrame, rows: int, cols: int, column: str) -> np.ndarray:
    """Place each tile's probability at its grid position; tiles never predicted are NaN.

    Parameters
    ----------
    tiles : pandas.DataFrame
        Columns ``row``, ``col`` and ``column``.
    rows, cols : int
        Size of the tile grid.
    column : str
        The probability column to place.

    Returns
    -------
    numpy.ndarray
        (rows, cols) float32 map, one value per tile.
    """
    grid = np.full((rows, cols), np.nan, np.float32)
    grid[tiles["row"].to_numpy(int), tiles["col"].to_numpy(int)] = tiles[column].to_numpy(np.float32)
    return grid


def write_probability_map(
    grid: np.ndarray, path: str | Path, *, slide_id: str, plan: TilePlan, positive_class: str
) -> None:
    """Write a probability map as a Zarr v3 group with its geometry in the attributes.

    One map pixel is one tile: it covers ``tile_size`` target pixels, that is
    ``plan.tile_size_level0`` level-0 pixels, from the slide's top-left corner.
    """
    with atomic_path(path) as tmp:
        group = zarr.open_group(tmp, mode="w", zarr_format=3)
        array = group.create_array(
            MAP,
            shape=grid.shape,
            chunks=(min(512, max(1, grid.shape[0])), min(512, max(1, grid.shape[1]))),
            dtype="float32",
            fill_value=np.nan,
            dimension_names=("row", "col"),
        )
        array[:] = grid
        group.attrs["slidesnake"] = {
            "slide_id": slide_id,
            "class": positive_class,
            "pixel_size_um": plan.tile_size * plan.tile_mpp,
            "level0_pixels_per_map_pixel": plan.tile_size_level0,
            "tile_size": plan.tile_size,
        }


def read_probability_map(path: str | Path) -> np.ndarray:
    """Read a probability map written by :func:`write_probability_map`."""
    return zarr.open_group(path, mode="r")[MAP][:]
