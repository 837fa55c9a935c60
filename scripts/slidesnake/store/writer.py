"""Write a slide's tissue tiles into a new tile store, with Dask, in bounded memory.

Speed: the tiles are processed in blocks of neighbouring tiles, one Dask task
per block, so a block's source tiles are decoded once (see
:meth:`slidesnake.wsi.SlideReader.read_level`). Each chunk is encoded in the
worker thread, by a codec library that releases the GIL, into exactly the bytes
the array's Zarr codecs decode, and written straight to its chunk file: Zarr's
own per-chunk asynchronous write path costs about 1 ms a chunk, more than
decoding the tile.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import zarr

from ..checksums import pixel_hash
from ..io import atomic_path, write_all
from ..tissue import sharpness
from ..wsi import SlideInfo, SlideReader, TilePlan
from .codecs import Codec
from .ngff import ngff_attributes
from .tiles import COORDINATES, IMAGE, INDEX_COLUMNS, write_index

log = logging.getLogger(__name__)

#: index columns computed while tiling (the others come with the tile list)
MEASURED = ("sharpness", "content_hash")

#: A block of tiles (one Dask task) reads about this many level pixels a side.
BLOCK_LEVEL_PX = 2048


class _ChunkWriter:
    """Encodes tiles and writes them as chunk files of the store's ``image`` array (a local store)."""

    def __init__(self, store: Path, array: zarr.Array, codec: Codec) -> None:
        self._folder = store / IMAGE
        self._key = array.metadata.encode_chunk_key
        self._encode = codec.encode
        self._made: set[str] = set()

    def write(self, row: int, col: int, tile: np.ndarray) -> None:
        path = os.path.join(self._folder, self._key((row, col, 0)))
        folder = os.path.dirname(path)  # one folder per chunk: image/c/<row>/<col>/
        parent = os.path.dirname(folder)
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        os.mkdir(folder)
        data = self._encode(tile)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(handle, data)
        finally:
            os.close(handle)


def _blocks(tiles: pd.DataFrame, per_side: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Group tiles into square blocks of ``per_side`` grid tiles: (rows, cols) per block."""
    rows, cols = tiles["row"].to_numpy(int), tiles["col"].to_numpy(int)
    keys = pd.DataFrame({"r": rows // per_side, "c": cols // per_side})
    return [(rows[i], cols[i]) for i in keys.groupby(["r", "c"], sort=True).indices.values()]


def _create_store(folder: Path, plan: TilePlan, codec: Codec) -> tuple[zarr.Group, zarr.Array]:
    """A new tile store: its group and its empty (row, column, channel) image array."""
    group = zarr.open_group(folder, mode="w", zarr_format=3)
    array = group.create_array(
        IMAGE,
        shape=(plan.target_height, plan.target_width, 3),
        chunks=(plan.tile_size, plan.tile_size, 3),
        dtype="uint8",
        fill_value=255,
        serializer=codec.serializer,
        compressors=codec.compressors,
        dimension_names=("y", "x", "c"),
    )
    return group, array


def _store_attributes(info: SlideInfo, plan: TilePlan, reader: str, codec: Codec, *, reason: str) -> dict:
    return {
        "slidesnake": {
            "slide_id": info.slide_id,
            "status": "excluded" if reason else "ok",
            "reason": reason,
            "source": info.path,
            "sha256": info.sha256,
            "reader": reader,
            "plan": plan.to_dict(),
            "compressor": codec.name,
            "lossless": codec.lossless,
            "coordinates": COORDINATES,
        },
        "ome": ngff_attributes(name=info.slide_id, array_path=IMAGE, pixel_um=plan.tile_mpp),
    }


def _compute(tasks: list, threads: int, cancelled: threading.Event) -> tuple:
    """Run the block tasks in a pool of our own; on any interruption stop every worker before returning.

    A SIGTERM (made an exception by the rule adapter) must not leave threads writing chunk files
    into the temporary store while it is being removed.
    """
    pool = ThreadPoolExecutor(max(1, threads))
    try:
        return dask.compute(*tasks, scheduler="threads", pool=pool)
    except BaseException:
        cancelled.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)


def write_tile_store(
    *, info: SlideInfo, plan: TilePlan, tiles: pd.DataFrame, path: str | Path, codec: Codec, threads: int
) -> pd.DataFrame:
    """Decode the given tiles of a slide and write them into a new Zarr store.

    Parameters
    ----------
    info : SlideInfo
        The slide.
    plan : TilePlan
        How it is tiled (level, scale, tile size).
    tiles : pandas.DataFrame
        The tiles to write (whole tiles of the grid), with at least the columns
        of :func:`slidesnake.tissue.tile_grid`.
    path : str or Path
        The ``.zarr`` folder to create; it appears only once complete.
    codec : Codec
        The chunk encoding (see :func:`slidesnake.store.make_codec`).
    threads : int
        Dask threads decoding, resampling and encoding tiles.

    Returns
    -------
    pandas.DataFrame
        The tile index as stored, with ``sharpness`` (blur score) and ``content_hash``
        (:func:`slidesnake.checksums.pixel_hash` of the stored tile) added.

    Raises
    ------
    SlideError
        When the slide's tiles cannot be read; no store is left behind.
    """
    size = plan.tile_size
    index = tiles.loc[:, [c for c in INDEX_COLUMNS if c not in MEASURED]].reset_index(drop=True).copy()
    per_side = max(1, BLOCK_LEVEL_PX // math.ceil(size * plan.scale))
    blocks = _blocks(index, per_side)
    with SlideReader(info) as reader, atomic_path(path) as tmp:
        group, array = _create_store(tmp, plan, codec)
        writer = _ChunkWriter(tmp, array, codec)

        cancelled = threading.Event()

        def tile_block(rows: np.ndarray, cols: np.ndarray) -> list[tuple[int, int, float, int]]:
            cache: dict = {}  # the block's decoded source tiles, shared by its target tiles
            block = np.empty((len(rows), size, size, 3), np.uint8)
            hashes = []
            for i, (row, col) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
                if cancelled.is_set():
                    msg = "tiling cancelled"
                    raise RuntimeError(msg)
                block[i] = reader.read_target(plan, row * size, col * size, size, size, cache)
                writer.write(row, col, block[i])
                hashes.append(pixel_hash(block[i]))
            return list(zip(rows.tolist(), cols.tolist(), sharpness(block).tolist(), hashes, strict=True))

        tasks = [dask.delayed(tile_block, pure=False)(rows, cols) for rows, cols in blocks]
        parts = _compute(tasks, threads, cancelled)
        measured = {(row, col): (score, digest) for part in parts for row, col, score, digest in part}
        keys = list(zip(index["row"].tolist(), index["col"].tolist(), strict=True))
        index["sharpness"] = [round(measured[key][0], 3) for key in keys]
        index["content_hash"] = np.array([measured[key][1] for key in keys], dtype=np.int64)
        write_index(group, index)
        group.attrs.update(_store_attributes(info, plan, reader.reader, codec, reason=""))
    log.info(
        "%s: wrote %d tiles of %d px (%s, %d blocks) to %s",
        info.slide_id,
        len(index),
        size,
        codec.name,
        len(blocks),
        path,
    )
    return index


def write_empty_store(
    *, info: SlideInfo, plan: TilePlan, path: str | Path, codec: Codec, reason: str
) -> None:
    """Write the store of an excluded slide: no tiles, and ``status: excluded`` with the reason.

    Parameters
    ----------
    info : SlideInfo
        The slide.
    plan : TilePlan
        Its tiling plan (:func:`slidesnake.wsi.resolution.empty_plan` when it could not be read).
    path : str or Path
        The ``.zarr`` folder to create.
    codec : Codec
        The chunk encoding the store declares.
    reason : str
        Why the slide is excluded (shown in the audit table and the report).
    """
    with atomic_path(path) as tmp:
        group, _ = _create_store(tmp, plan, codec)
        write_index(group, pd.DataFrame(columns=list(INDEX_COLUMNS)))
        group.attrs.update(_store_attributes(info, plan, info.reader, codec, reason=reason))
