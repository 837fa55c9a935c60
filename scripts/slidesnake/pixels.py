"""The pixels of model inputs: what an input pipeline reads for an entries table (tiles of Zarr stores or
image files), and the entries of a whole slide's stored tiles for prediction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .entries import is_tiles
from .patches import load_image
from .store.tiles import TileStore


def store_entries(store_path: str | Path, stride: int | None = None) -> pd.DataFrame:
    """Entries for predicting a whole slide: every stored tile, and with a ``stride`` also overlapping ones.

    Parameters
    ----------
    store_path : str or Path
        The slide's tile store.
    stride : int, optional
        Target pixels between predicted tiles, a divisor of the tile size. Shifted tiles are kept
        where every chunk they touch is a stored (tissue) tile.

    Returns
    -------
    pandas.DataFrame
        Columns ``item``, ``source``, ``y``, ``x`` (target pixels), ``row``, ``col`` (the tile grid
        position, of the tile the corner lies in) and ``aligned`` (the tile is a stored tile).
    """
    store = TileStore(store_path)
    index = store.index
    size = store.tile_size
    step = stride or size
    rows, cols = store.plan.grid_shape
    stored = np.zeros((rows + 1, cols + 1), bool)
    stored[index["row"].to_numpy(int), index["col"].to_numpy(int)] = True
    parts = []
    for dy in range(0, size, step):
        for dx in range(0, size, step):
            ok = stored[:rows, :cols].copy()
            if dy:
                ok &= stored[1 : rows + 1, :cols]
            if dx:
                ok &= stored[:rows, 1 : cols + 1]
            if dy and dx:
                ok &= stored[1 : rows + 1, 1 : cols + 1]
            r, c = np.nonzero(ok)
            parts.append(pd.DataFrame({"row": r, "col": c, "y": r * size + dy, "x": c * size + dx}))
    table = pd.concat(parts, ignore_index=True).sort_values(["y", "x"], ignore_index=True)
    table["aligned"] = (table["y"] % size == 0) & (table["x"] % size == 0)
    return table.assign(item=store.slide_id, source=str(store_path))


@dataclass(frozen=True)
class PixelSource:
    """What an input pipeline reads: per entry the values of ``columns``, turned into pixels by ``read``.

    Attributes
    ----------
    columns : tuple of numpy.ndarray
        One array per argument of ``read``, one value per entry.
    read : callable
        ``read(*values) -> (size, size, 3) uint8`` for one entry.
    size : int
        Side of the pixels in pixels.
    """

    columns: tuple[np.ndarray, ...]
    read: Callable[..., np.ndarray]
    size: int


def pixel_source(entries: pd.DataFrame, *, image_size: int | None = None) -> PixelSource:
    """How to read the pixels of the entries: from their tile stores, or their image files.

    Parameters
    ----------
    entries : pandas.DataFrame
        An entries table (or :func:`store_entries`).
    image_size : int, optional
        Images are resized to this; tiles keep their stored size.

    Returns
    -------
    PixelSource
        The columns and the reader for :func:`slidesnake.model.data.pipeline`.
    """
    if is_tiles(entries):
        paths = sorted(set(entries["source"]))
        stores = [TileStore(path) for path in paths]
        images = [store.image for store in stores]
        size = stores[0].tile_size if stores else int(image_size or 1)
        position = {path: k for k, path in enumerate(paths)}

        def read_tile(store: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
            return images[int(store)][int(y) : int(y) + size, int(x) : int(x) + size]

        store_column = entries["source"].map(position).to_numpy(np.int64)
        columns = (store_column, entries["y"].to_numpy(np.int64), entries["x"].to_numpy(np.int64))
        return PixelSource(columns, read_tile, size)

    def read_image(path: bytes | str) -> np.ndarray:  # bytes inside a tf.data pipeline
        return load_image(path.decode() if isinstance(path, bytes) else str(path), image_size)

    return PixelSource((entries["source"].to_numpy(dtype=str),), read_image, int(image_size))
