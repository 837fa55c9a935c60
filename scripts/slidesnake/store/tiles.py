"""A slide's tile store, opened read-only: one self-describing Zarr v3 group.

- ``image``: the slide at the target resolution, shape (row, column, 3) uint8,
  one chunk per tile. Only tissue tiles are written; every other chunk reads as
  the fill value, white.
- ``tiles``: the tile index (one entry per written tile), one 1-D array per
  column of :data:`INDEX_COLUMNS`.
- group attributes ``slidesnake`` (slide id, source file and checksum, reader,
  the tiling plan, compressor) and ``ome`` (OME-NGFF 0.5, see :mod:`.ngff`).

Everything a later stage needs (plan, tile size, index) comes from the store.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from ..wsi.resolution import TilePlan
from . import codecs  # noqa: F401  (registers the JPEG codec for every reader of stores)

IMAGE = "image"
INDEX = "tiles"
#: Tile index columns: grid position, target-pixel and level-0 corners, tissue share, blur score, pixel hash.
INDEX_COLUMNS = ("row", "col", "y", "x", "x0", "y0", "tissue_fraction", "sharpness", "content_hash")
FLOAT_COLUMNS = ("tissue_fraction", "sharpness")
COORDINATES = "row/col: tile grid; y/x: target pixels; x0/y0: level-0 pixels"


def write_index(group: zarr.Group, index: pd.DataFrame) -> None:
    """Store a tile index as the ``tiles`` subgroup, one 1-D array per column."""
    tiles = group.create_group(INDEX)
    for column in INDEX_COLUMNS:
        values = index[column].to_numpy()
        dtype = "float32" if column in FLOAT_COLUMNS else "int64"
        tiles.create_array(column, data=values.astype(dtype), chunks=(max(1, len(values)),))


class TileStore:
    """A tile store written by :func:`slidesnake.store.write_tile_store`.

    Parameters
    ----------
    path : str or Path
        The ``.zarr`` folder.

    Attributes
    ----------
    path : Path
        The store.
    attrs : dict
        Its ``slidesnake`` attributes.
    plan : TilePlan
        How the slide was tiled.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._group = zarr.open_group(self.path, mode="r")
        self.attrs = dict(self._group.attrs["slidesnake"])
        self.plan = TilePlan.from_dict(self.attrs["plan"])

    @property
    def slide_id(self) -> str:
        """The slide's id."""
        return str(self.attrs["slide_id"])

    @property
    def status(self) -> str:
        """``ok``, or ``excluded`` (no tiles: :attr:`reason` says why)."""
        return str(self.attrs.get("status", "ok"))

    @property
    def reason(self) -> str:
        """Why the slide is excluded; empty when it is not."""
        return str(self.attrs.get("reason", ""))

    @property
    def tile_size(self) -> int:
        """Tile side in target pixels."""
        return self.plan.tile_size

    @property
    def image(self) -> zarr.Array:
        """The slide image array (read-only)."""
        return self._group[IMAGE]

    @cached_property
    def index(self) -> pd.DataFrame:
        """The tile index: one row per written tile, columns :data:`INDEX_COLUMNS`."""
        tiles = self._group[INDEX]
        return pd.DataFrame({column: tiles[column][:] for column in INDEX_COLUMNS})

    def read_tile(self, y: int, x: int) -> np.ndarray:
        """The tile whose top-left corner is (``y``, ``x``) in target pixels, (row, column, 3) uint8."""
        size = self.tile_size
        return self.image[y : y + size, x : x + size]

    def read_tiles(self, index: pd.DataFrame) -> np.ndarray:
        """Read the tiles listed in ``index`` (columns ``y``, ``x``) into one (tile, row, column, 3) array."""
        size = self.tile_size
        out = np.empty((len(index), size, size, 3), np.uint8)
        for i, (y, x) in enumerate(zip(index["y"], index["x"], strict=True)):
            out[i] = self.read_tile(int(y), int(x))
        return out

    def disk_bytes(self) -> int:
        """Bytes of every file of the store."""
        return folder_bytes(self.path)


def folder_bytes(folder: str | Path) -> int:
    """Total size of the files below a folder."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
