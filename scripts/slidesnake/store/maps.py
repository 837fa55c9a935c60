"""Stitch tile probabilities into a slide-level map of every class, stored as Zarr.

A map cell is ``stride`` target pixels square (the tile size when tiles do not overlap). Each
predicted tile covers ``(tile_size / stride)**2`` cells; a cell's value is the mean over the tiles
that cover it, NaN where none does. The map is (row, col, class) float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from ..interrupts import interrupts_held
from ..io import atomic_path
from ..wsi.resolution import TilePlan

MAP = "probability"


@dataclass(frozen=True)
class MapGeometry:
    """Where a map's cells lie on the slide.

    Attributes
    ----------
    cell : int
        Cell side in target pixels (the prediction stride).
    plan : TilePlan
        The slide's tiling plan (tile size, target MPP, level-0 pixels per target pixel).
    """

    cell: int
    plan: TilePlan

    @property
    def shape(self) -> tuple[int, int]:
        """Cells down and across: the tile grid's extent in cells."""
        rows, cols = self.plan.grid_shape
        per_tile = self.plan.tile_size // self.cell
        return rows * per_tile, cols * per_tile

    @property
    def cell_um(self) -> float:
        """Cell side in microns."""
        return self.cell * self.plan.tile_mpp

    @property
    def cell_level0(self) -> float:
        """Cell side in level-0 pixels."""
        return self.cell * self.plan.level0_per_target


def stitch(tiles: pd.DataFrame, geometry: MapGeometry, columns: Sequence[str]) -> np.ndarray:
    """Average the tiles' values into the map's cells.

    Parameters
    ----------
    tiles : pandas.DataFrame
        Columns ``y``, ``x`` (target pixels of the tile corners) and ``columns``.
    geometry : MapGeometry
        The map's cells.
    columns : sequence of str
        The value columns (one map channel each, e.g. ``p_<class>``).

    Returns
    -------
    numpy.ndarray
        (row, col, channel) float32, NaN where no tile covers a cell.
    """
    rows, cols = geometry.shape
    per_tile = geometry.plan.tile_size // geometry.cell
    total = np.zeros((rows, cols, len(columns)), np.float64)
    count = np.zeros((rows, cols), np.int32)
    top = tiles["y"].to_numpy(int) // geometry.cell
    left = tiles["x"].to_numpy(int) // geometry.cell
    values = tiles[list(columns)].to_numpy(np.float64)
    for dy in range(per_tile):
        for dx in range(per_tile):
            np.add.at(total, (top + dy, left + dx), values)
            np.add.at(count, (top + dy, left + dx), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        stitched = total / count[..., None]
    return stitched.astype(np.float32)


def write_probability_map(
    grid: np.ndarray, path: str | Path, *, slide_id: str, geometry: MapGeometry, classes: Sequence[str]
) -> None:
    """Write a (row, col, class) map as a Zarr v3 group, its geometry and class names in the attributes."""
    with atomic_path(path) as tmp, interrupts_held():  # Zarr writes through its own thread: never cut
        group = zarr.open_group(tmp, mode="w", zarr_format=3)
        rows, cols, channels = grid.shape
        array = group.create_array(
            MAP,
            shape=grid.shape,
            chunks=(min(512, max(1, rows)), min(512, max(1, cols)), channels),
            dtype="float32",
            fill_value=np.nan,
            dimension_names=("row", "col", "class"),
        )
        array[:] = grid
        group.attrs["slidesnake"] = {
            "slide_id": slide_id,
            "classes": list(classes),
            "cell_target_px": geometry.cell,
            "pixel_size_um": geometry.cell_um,
            "level0_pixels_per_map_pixel": geometry.cell_level0,
            "tile_size": geometry.plan.tile_size,
            "coordinates": "map cell (row, col) covers level-0 pixels [col, col + 1) x [row, row + 1) times "
            "level0_pixels_per_map_pixel, from the slide's top-left corner",
        }


def read_probability_map(path: str | Path) -> tuple[np.ndarray, dict]:
    """Read a map written by :func:`write_probability_map`: the (row, col, class) array and its attributes."""
    group = zarr.open_group(path, mode="r")
    return group[MAP][:], dict(group.attrs["slidesnake"])
