"""Write a slide's tissue tiles into a new tile store, with Dask, in bounded memory.

Files: the ``image`` array is sharded (Zarr v3's sharding codec): one file holds a square of
:data:`SHARD_TILES` x :data:`SHARD_TILES` tile chunks, so a gigapixel slide is a few dozen
files rather than one per tile; only tissue chunks are in a shard (the others read as white).

Speed: one Dask task per shard. Within it, tiles are processed in blocks of neighbouring tiles
so a block's source tiles are decoded once (see :meth:`slidesnake.wsi.SlideReader.read_level`).
Each chunk is encoded in the worker thread, by a codec library that releases the GIL, into exactly
the bytes the array's inner codecs decode, and appended to the shard file; the shard's index
(offset and length of each chunk, with its CRC32C, as the sharding codec's default
``index_codecs`` describe) is written at its end. Zarr's own write path costs about 1 ms a
chunk, more than decoding the tile. Reading is plain Zarr.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask
import google_crc32c
import numpy as np
import pandas as pd
import zarr

from ..checksums import pixel_hash
from ..errors import SlideError
from ..interrupts import interrupts_held
from ..io import atomic_path, write_all
from ..tissue import sharpness
from ..wsi.info import SlideInfo
from ..wsi.reader import SlideReader
from ..wsi.resolution import TilePlan
from .codecs import Codec
from .ngff import ngff_attributes
from .tiles import COORDINATES, IMAGE, INDEX_COLUMNS, write_index

log = logging.getLogger(__name__)

#: index columns computed while tiling (the others come with the tile list)
MEASURED = ("sharpness", "content_hash")

#: A block of tiles (decoded together) reads about this many level pixels a side.
BLOCK_LEVEL_PX = 2048
#: Tile chunks per shard side: 32 x 32 tiles a file (measured in benchmarks/README.md).
SHARD_TILES = 32
#: The shard index's marker of a chunk that is not stored (the sharding codec's).
MISSING = np.iinfo(np.uint64).max


class _ShardWriter:
    """Appends encoded tile chunks to one shard file and ends it with the shard index."""

    def __init__(self, path: str, chunks_per_shard: int) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._index = np.full((chunks_per_shard, chunks_per_shard, 1, 2), MISSING, dtype="<u8")
        self._offset = 0

    def append(self, inner_row: int, inner_col: int, data: bytes) -> None:
        write_all(self._handle, data)
        self._index[inner_row, inner_col, 0] = (self._offset, len(data))
        self._offset += len(data)

    def close(self) -> None:
        """Write the index (little-endian uint64 pairs, then their CRC32C) and close the file."""
        try:
            index = self._index.tobytes()
            write_all(self._handle, index + np.uint32(google_crc32c.value(index)).astype("<u4").tobytes())
        finally:
            os.close(self._handle)


def _shards(tiles: pd.DataFrame) -> list[tuple[tuple[int, int], np.ndarray, np.ndarray]]:
    """Group tiles by the shard holding them: ((shard row, shard col), rows, cols) per shard."""
    rows, cols = tiles["row"].to_numpy(int), tiles["col"].to_numpy(int)
    keys = pd.DataFrame({"r": rows // SHARD_TILES, "c": cols // SHARD_TILES})
    return [(key, rows[i], cols[i]) for key, i in keys.groupby(["r", "c"], sort=True).indices.items()]


def _blocks(rows: np.ndarray, cols: np.ndarray, per_side: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Group tiles into square blocks of ``per_side`` grid tiles: (rows, cols) per block."""
    keys = pd.DataFrame({"r": rows // per_side, "c": cols // per_side})
    return [(rows[i], cols[i]) for i in keys.groupby(["r", "c"], sort=True).indices.values()]


def _create_store(folder: Path, plan: TilePlan, codec: Codec) -> tuple[zarr.Group, zarr.Array]:
    """A new tile store: its group and its empty (row, column, channel) image array."""
    group = zarr.open_group(folder, mode="w", zarr_format=3)
    array = group.create_array(
        IMAGE,
        shape=(plan.target_height, plan.target_width, 3),
        chunks=(plan.tile_size, plan.tile_size, 3),
        shards=(SHARD_TILES * plan.tile_size, SHARD_TILES * plan.tile_size, 3),
        dtype="uint8",
        fill_value=255,
        serializer=codec.serializer,
        compressors=codec.compressors,
        dimension_names=("y", "x", "c"),
    )
    return group, array


def _store_attributes(
    info: SlideInfo,
    plan: TilePlan,
    reader: str,
    codec: Codec,
    *,
    reason: str,
    resampling: str,
    unreadable: Sequence[tuple[int, int, str]] = (),
) -> dict:
    return {
        "slidesnake": {
            "slide_id": info.slide_id,
            "status": "excluded" if reason else "ok",
            "reason": reason,
            "unreadable_tiles": len(unreadable),
            "unreadable_first": _unreadable_first(unreadable),
            "source": info.path,
            "sha256": info.sha256,
            "reader": reader,
            "plan": plan.to_dict(),
            "resampling": resampling,
            "compressor": codec.name,
            "lossless": codec.lossless,
            "coordinates": COORDINATES,
        },
        "ome": ngff_attributes(name=info.slide_id, array_path=IMAGE, pixel_um=plan.tile_mpp),
    }


def _unreadable_first(unreadable: Sequence[tuple[int, int, str]]) -> str:
    """The first unreadable tile (in grid order) and why, for the QC: empty when every tile was read."""
    if not unreadable:
        return ""
    row, col, problem = min(unreadable)
    return f"tile row {row}, col {col}: {problem}"


def _without_unreadable(
    index: pd.DataFrame, unreadable: Sequence[tuple[int, int, str]], info: SlideInfo
) -> pd.DataFrame:
    """The tile index less the tiles that could not be read (logged with their count and the first)."""
    if not unreadable:
        return index
    log.warning(
        "%s: %d of %d tissue tile(s) could not be read and are left out (a corrupt or truncated file?); "
        "first: %s",
        info.slide_id,
        len(unreadable),
        len(index),
        _unreadable_first(unreadable),
    )
    bad = pd.MultiIndex.from_tuples([(row, col) for row, col, _ in unreadable])
    keep = ~pd.MultiIndex.from_frame(index[["row", "col"]]).isin(bad)
    return index[keep].reset_index(drop=True)


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
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def write_tile_store(
    *,
    info: SlideInfo,
    plan: TilePlan,
    tiles: pd.DataFrame,
    path: str | Path,
    codec: Codec,
    threads: int,
    jpeg_dct_scaling: bool,
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
    jpeg_dct_scaling : bool
        Let libjpeg decode JPEG tiles reduced where it can (see
        :meth:`slidesnake.wsi.SlideReader.read_target`); the store's attributes say how
        target pixels were made (``resampling``).

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
    shards = _shards(index)
    with SlideReader(info) as reader, atomic_path(path) as tmp:
        with interrupts_held():  # Zarr writes through its own thread: never cut (see slidesnake.interrupts)
            group, array = _create_store(tmp, plan, codec)
        folder, shard_key, encode = tmp / IMAGE, array.metadata.encode_chunk_key, codec.encode
        cancelled = threading.Event()
        resampling = reader.resampling(plan, jpeg_dct_scaling=jpeg_dct_scaling)
        dct = resampling == "jpeg-dct"

        def tile_shard(shard: tuple[int, int], rows: np.ndarray, cols: np.ndarray) -> list[tuple]:
            writer = _ShardWriter(os.path.join(folder, shard_key((*shard, 0))), SHARD_TILES)
            measured = []
            try:
                for block_rows, block_cols in _blocks(rows, cols, per_side):
                    cache: dict = {}  # the block's decoded source tiles, shared by its target tiles
                    block = np.empty((len(block_rows), size, size, 3), np.uint8)
                    hashes = []
                    for i, (row, col) in enumerate(
                        zip(block_rows.tolist(), block_cols.tolist(), strict=True)
                    ):
                        if cancelled.is_set():
                            msg = "tiling cancelled"
                            raise RuntimeError(msg)
                        try:
                            block[i] = reader.read_target(
                                plan, row * size, col * size, size, size, cache, jpeg_dct_scaling=dct
                            )
                        except SlideError as err:  # a corrupt part of the file: this tile is left out
                            unreadable.append((row, col, err.problem))
                            block[i] = 255
                            hashes.append(None)
                            continue
                        writer.append(row % SHARD_TILES, col % SHARD_TILES, encode(block[i]))
                        hashes.append(pixel_hash(block[i]))
                    scores = sharpness(block, tile_mpp=plan.tile_mpp).tolist()
                    measured += zip(block_rows.tolist(), block_cols.tolist(), scores, hashes, strict=True)
            finally:
                writer.close()
            return measured

        unreadable: list[tuple[int, int, str]] = []  # list.append is atomic across the threads
        tasks = [dask.delayed(tile_shard, pure=False)(shard, rows, cols) for shard, rows, cols in shards]
        parts = _compute(tasks, threads, cancelled)
        measured = {(row, col): (score, digest) for part in parts for row, col, score, digest in part}
        if unreadable and len(unreadable) == len(index):
            problem = f"no tile could be read; {_unreadable_first(unreadable)}"
            raise SlideError(info.slide_id, info.path, problem)
        index = _without_unreadable(index, unreadable, info)
        keys = list(zip(index["row"].tolist(), index["col"].tolist(), strict=True))
        index["sharpness"] = [round(measured[key][0], 3) for key in keys]
        index["content_hash"] = np.array([measured[key][1] for key in keys], dtype=np.int64)
        with interrupts_held():
            write_index(group, index)
            group.attrs.update(
                _store_attributes(
                    info, plan, reader.reader, codec, reason="", resampling=resampling, unreadable=unreadable
                )
            )
    log.info(
        "%s: wrote %d tiles of %d px (%s, resampling %s) in %d shard file(s) to %s",
        info.slide_id,
        len(index),
        size,
        codec.name,
        resampling,
        len(shards),
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
    with atomic_path(path) as tmp, interrupts_held():
        group, _ = _create_store(tmp, plan, codec)
        write_index(group, pd.DataFrame(columns=list(INDEX_COLUMNS)))
        group.attrs.update(
            _store_attributes(info, plan, info.reader, codec, reason=reason, resampling="none")
        )
