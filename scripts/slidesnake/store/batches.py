"""Tiles of one store in fixed-size batches, the next shard read while the current batch is used.

Prediction and feature extraction both run a model over every tile of a slide. Reading a shard
(decoding its chunks) and running the model overlap: a second thread reads the next shard while
the caller works on the batches of this one. Each batch is uint8 (row, column, channel) tiles.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from .tiles import TileStore


def tile_batches(
    store: TileStore, corners: pd.DataFrame, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(positions, tiles)`` batches of the tiles at ``corners``, shard by shard.

    Parameters
    ----------
    store : TileStore
        The slide's tiles.
    corners : pandas.DataFrame
        Columns ``y``, ``x``: the target-pixel corners of the tiles wanted (any order; tiles off
        the stored grid, as overlapping prediction asks for, are assembled from their neighbours).
    batch_size : int
        Tiles per batch; the last batch has fewer.

    Yields
    ------
    (numpy.ndarray, numpy.ndarray)
        The batch's row positions in ``corners`` (int) and its (tile, row, column, channel) uint8
        pixels. Every position is yielded once.
    """
    windows = store.windows(corners.reset_index(drop=True))
    positions, tiles = np.zeros(0, int), np.zeros((0, store.tile_size, store.tile_size, 3), np.uint8)
    with ThreadPoolExecutor(1) as reader:
        upcoming = reader.submit(next, windows, None)
        while True:
            window = upcoming.result()
            if window is not None:
                upcoming = reader.submit(next, windows, None)
                positions = np.concatenate([positions, window[0]])
                tiles = np.concatenate([tiles, window[1]])
            while len(tiles) >= batch_size or (window is None and len(tiles)):
                yield positions[:batch_size], tiles[:batch_size]
                positions, tiles = positions[batch_size:], tiles[batch_size:]
            if window is None:
                return
