"""Tile a slide into one chunked Zarr store (chunk = tile) with Dask, and read tiles back.

The store is a Zarr v3 group holding the slide at the target resolution as the
array ``image`` of shape (row, column, 3), one chunk per tile. Only tissue tiles
are decoded and written; every other chunk stays unwritten and reads as the
fill value, white. The tile index (one entry per written tile) lives in the
group ``tiles`` as one 1-D array per column.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from .io import atomic_path
from .slide import SlideInfo, SlideReader
from .tissue import sharpness

log = logging.getLogger(__name__)

IMAGE = "image"
INDEX = "tiles"
INDEX_COLUMNS = ("row", "col", "y", "x", "x0", "y0", "tissue_fraction", "sharpness")
COMPRESSORS = {
    "zstd": lambda: ZstdCodec(level=3),
    "blosc-lz4": lambda: BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),
    "none": lambda: None,
}


def _compressors(name: str) -> tuple:
    if name not in COMPRESSORS:
        raise ValueError(f"config 'tiling: compressor' = {name!r}; choose one of {sorted(COMPRESSORS)}")
    codec = COMPRESSORS[name]()
    return () if codec is None else (codec,)


def write_tile_store(
    info: SlideInfo,
    tiles: pd.DataFrame,
    tile_size: int,
    store_path: str | Path,
    compressor: str = "zstd",
    threads: int = 1,
) -> pd.DataFrame:
    """Decode the given tiles of a slide and write them into a new Zarr store.

    Parameters
    ----------
    info : SlideInfo
        The slide and its resolution decision.
    tiles : pandas.DataFrame
        The tiles to write, with at least the columns of :func:`slidesnake.tissue.tile_grid`.
    tile_size : int
        Tile side in target pixels (the chunk size).
    store_path : str or Path
        The ``.zarr`` folder to create; it appears only once complete.
    compressor : str
        One of ``COMPRESSORS``.
    threads : int
        Dask threads reading and compressing tiles.

    Returns
    -------
    pandas.DataFrame
        The tile index as stored, with a ``sharpness`` column added.
    """
    shape = (info.target_height, info.target_width, 3)
    wanted = {(int(r), int(c)) for r, c in zip(tiles["row"], tiles["col"], strict=True)}
    reader = SlideReader(info)
    sharpness_by_tile: dict[tuple[int, int], float] = {}

    def read_block(block_info: dict | None = None) -> np.ndarray:
        (row_start, row_stop), (col_start, col_stop), _ = block_info[None]["array-location"]
        height, width = row_stop - row_start, col_stop - col_start
        key = (row_start // tile_size, col_start // tile_size)
        if key not in wanted or (height, width) != (tile_size, tile_size):
            return np.full((height, width, 3), 255, np.uint8)
        rgb = reader.read_target(row_start, col_start, height, width)
        sharpness_by_tile[key] = sharpness(rgb)
        return rgb

    chunks = tuple(_axis_chunks(n, tile_size) for n in shape[:2]) + ((3,),)
    image = da.map_blocks(read_block, dtype=np.uint8, chunks=chunks, meta=np.empty((0, 0, 0), np.uint8))
    with atomic_path(store_path) as tmp:
        group = zarr.open_group(tmp, mode="w", zarr_format=3)
        array = group.create_array(
            IMAGE,
            shape=shape,
            chunks=(tile_size, tile_size, 3),
            dtype="uint8",
            fill_value=255,
            compressors=_compressors(compressor),
            dimension_names=("y", "x", "c"),
            config={"write_empty_chunks": False},
        )
        with dask.config.set(scheduler="threads", num_workers=max(1, threads)):
            da.store(image, array, lock=False)
        index = tiles.loc[:, [c for c in INDEX_COLUMNS if c != "sharpness"]].reset_index(drop=True).copy()
        index["sharpness"] = [
            round(sharpness_by_tile.get((int(r), int(c)), float("nan")), 3)
            for r, c in zip(index["row"], index["col"], strict=True)
        ]
        _write_index(group, index)
        group.attrs.update(
            {
                "slidesnake": {
                    "slide_id": info.slide_id,
                    "source": info.path,
                    "sha256": info.sha256,
                    "target_mpp": info.target_mpp,
                    "tile_size": tile_size,
                    "level": info.level,
                    "scale": info.scale,
                    "coordinates": "row/col: tile grid; y/x: target pixels; x0/y0: level-0 pixels",
                }
            }
        )
    reader.close()
    log.info("%s: wrote %d tiles of %d px to %s", info.slide_id, len(index), tile_size, store_path)
    return index


def _axis_chunks(length: int, size: int) -> tuple[int, ...]:
    full, rest = divmod(length, size)
    return (size,) * full + ((rest,) if rest else ())


def _write_index(group: zarr.Group, index: pd.DataFrame) -> None:
    tiles = group.create_group(INDEX)
    for column in INDEX_COLUMNS:
        values = index[column].to_numpy()
        dtype = "float32" if column in ("tissue_fraction", "sharpness") else "int64"
        tiles.create_array(column, data=values.astype(dtype), chunks=(max(1, len(values)),))


def read_tile_index(store_path: str | Path) -> pd.DataFrame:
    """Return the tile index of a store as a table (one row per written tile)."""
    group = zarr.open_group(store_path, mode="r")
    tiles = group[INDEX]
    return pd.DataFrame({column: tiles[column][:] for column in INDEX_COLUMNS})


def open_image(store_path: str | Path) -> zarr.Array:
    """Open the slide image array of a store, read-only."""
    return zarr.open_group(store_path, mode="r")[IMAGE]


def store_attrs(store_path: str | Path) -> dict:
    """Return the slidesnake attributes of a store (slide id, tile size, resolution...)."""
    return dict(zarr.open_group(store_path, mode="r").attrs["slidesnake"])


def read_tiles(image: zarr.Array, index: pd.DataFrame, tile_size: int) -> np.ndarray:
    """Read the tiles listed in ``index`` into one (tile, row, column, channel) array."""
    out = np.empty((len(index), tile_size, tile_size, 3), np.uint8)
    for i, (y, x) in enumerate(zip(index["y"], index["x"], strict=True)):
        out[i] = image[y : y + tile_size, x : x + tile_size]
    return out
