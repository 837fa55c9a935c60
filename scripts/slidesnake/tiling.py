"""Tile a slide into one chunked Zarr store (chunk = tile) with Dask, and read tiles back.

The store is a Zarr v3 group:

- ``image``: the slide at the target resolution, shape (row, column, 3) uint8,
  one chunk per tile. Only tissue tiles are decoded and written; every other
  chunk stays unwritten and reads as the fill value, white.
- ``tiles``: the tile index (one entry per written tile), one 1-D array per
  column of ``INDEX_COLUMNS``.
- group attributes ``slidesnake`` (slide id, source, checksum, tile size,
  resolution decision, compressor) and ``ome`` (OME-NGFF 0.5 ``multiscales``
  for viewers, see :func:`ngff_attributes`).

Speed: the tiles are processed in blocks of neighbouring tiles, one Dask task
per block, so a block's source tiles are decoded once (see
:meth:`slidesnake.slide.SlideReader.read_level`). Each chunk is encoded in the
worker thread, by a codec library that releases the GIL, into exactly the bytes
the array's Zarr codecs decode, and written straight to its chunk file: Zarr's
own per-chunk asynchronous write path costs about 1 ms a chunk, more than
decoding the tile.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import dask
import imagecodecs
import imagecodecs.numcodecs
import numcodecs
import numpy as np
import pandas as pd
import zarr
from zarr.codecs import BloscCodec, ZstdCodec
from zarr.codecs.numcodecs import _NumcodecsArrayBytesCodec
from zarr.errors import ZarrUserWarning

from .io import atomic_path
from .slide import SlideInfo, SlideReader
from .tissue import sharpness

log = logging.getLogger(__name__)

IMAGE = "image"
INDEX = "tiles"
INDEX_COLUMNS = ("row", "col", "y", "x", "x0", "y0", "tissue_fraction", "sharpness", "content_hash")
#: index columns computed while tiling (the others come with the tile list)
MEASURED = ("sharpness", "content_hash")

#: A block of tiles (one Dask task) reads about this many level pixels a side.
BLOCK_LEVEL_PX = 2048

#: JPEG quality of the ``jpeg`` compressor unless the config says otherwise.
JPEG_QUALITY = 90


class JpegCodec(_NumcodecsArrayBytesCodec, codec_name="imagecodecs_jpeg"):
    """Zarr v3 array-to-bytes codec storing each (row, column, 3) uint8 chunk as a JPEG image.

    It wraps ``imagecodecs.numcodecs.Jpeg`` with Zarr's numcodecs adapter; its
    metadata name is ``numcodecs.imagecodecs_jpeg``. Importing this module
    registers it, so any process that opens a store through slidesnake reads it.
    """

    def __init__(self, **codec_config: Any) -> None:
        with warnings.catch_warnings():  # Zarr warns that numcodecs codecs are outside the v3 spec
            warnings.simplefilter("ignore", ZarrUserWarning)
            super().__init__(**codec_config)


imagecodecs.numcodecs.register_codecs(codecs=["imagecodecs_jpeg"], verbose=False)
zarr.registry.register_codec(JpegCodec.codec_name, JpegCodec)


@dataclass(frozen=True)
class Compressor:
    """How tile chunks are stored.

    Attributes
    ----------
    name : str
        The config name (``tiling: compressor``).
    serializer : object
        Zarr's array-to-bytes codec (``"auto"``: raw bytes).
    compressors : tuple
        Zarr's bytes-to-bytes codecs.
    encode : callable
        Encodes one (row, column, 3) uint8 chunk as the codecs above describe
        (a zstd frame, a blosc buffer, raw bytes or a JPEG image), with a codec
        library that releases the GIL.
    lossless : bool
        Whether the stored pixels equal the tiles.
    """

    name: str
    serializer: Any
    compressors: tuple
    encode: Callable[[np.ndarray], bytes]
    lossless: bool


def _raw(tile: np.ndarray) -> bytes:
    return tile.tobytes()


def make_compressor(name: str, jpeg_quality: int = JPEG_QUALITY) -> Compressor:
    """Return the chunk encoding called ``name`` in the config.

    Parameters
    ----------
    name : str
        ``zstd`` (lossless, default), ``blosc-lz4`` (lossless, fastest to
        decode), ``none``, or ``jpeg`` (lossy, about 10x smaller than ``zstd``).
    jpeg_quality : int
        Quality (1-100) of the ``jpeg`` compressor.

    Returns
    -------
    Compressor
        The Zarr codecs and the matching chunk encoder.

    Raises
    ------
    ValueError
        For an unknown name (a config error).
    """
    if name == "zstd":
        return Compressor(
            name, "auto", (ZstdCodec(level=1),), partial(imagecodecs.zstd_encode, level=1), True
        )
    if name == "blosc-lz4":
        codec = BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle", typesize=1)
        blosc = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.BITSHUFFLE)
        return Compressor(name, "auto", (codec,), blosc.encode, True)
    if name == "none":
        return Compressor(name, "auto", (), _raw, True)
    if name == "jpeg":
        quality = int(jpeg_quality)
        encode = imagecodecs.numcodecs.Jpeg(level=quality).encode  # what JpegCodec(level=quality) runs
        return Compressor(name, JpegCodec(level=quality), (), encode, False)
    raise ValueError(f"config 'tiling: compressor' = {name!r}; choose one of {sorted(COMPRESSORS)}")


COMPRESSORS = ("zstd", "blosc-lz4", "none", "jpeg")


def ngff_attributes(info: SlideInfo) -> dict:
    """OME-NGFF 0.5 metadata of a tile store (the group attribute ``ome``).

    ``multiscales`` has one resolution level, the array ``image``, with axes
    ``y`` and ``x`` in micrometres (scale: the tile MPP) and the channel axis
    ``c`` last; ``omero`` shows the three channels as red, green and blue.
    NGFF asks for the channel axis before the spatial ones. slidesnake keeps
    (row, column, channel) so that a chunk is one interleaved RGB tile (what
    the JPEG codec, the models and every reader of the tiles want) and accepts
    this one deviation: napari-ome-zarr (0.10, napari 0.9) and ome-zarr-py's
    reader open the store as three additive colour layers with the right pixel
    size. Validators that check the axis order reject it.

    Parameters
    ----------
    info : SlideInfo
        The slide and its resolution decision.

    Returns
    -------
    dict
        The value of the group attribute ``ome``.
    """
    channels = [
        {
            "label": name,
            "color": color,
            "active": True,
            "window": {"min": 0, "max": 255, "start": 0, "end": 255},
        }
        for name, color in (("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF"))
    ]
    return {
        "version": "0.5",
        "multiscales": [
            {
                "name": info.slide_id,
                "axes": [
                    {"name": "y", "type": "space", "unit": "micrometer"},
                    {"name": "x", "type": "space", "unit": "micrometer"},
                    {"name": "c", "type": "channel"},
                ],
                "datasets": [
                    {
                        "path": IMAGE,
                        "coordinateTransformations": [
                            {"type": "scale", "scale": [info.tile_mpp, info.tile_mpp, 1.0]}
                        ],
                    }
                ],
            }
        ],
        "omero": {"version": "0.5", "rdefs": {"model": "color"}, "channels": channels},
    }


class _ChunkWriter:
    """Encodes tiles and writes them as chunk files of the store's ``image`` array (a local store)."""

    def __init__(self, store: Path, array: zarr.Array, compressor: Compressor) -> None:
        self._folder = store / IMAGE
        self._key = array.metadata.encode_chunk_key
        self._encode = compressor.encode
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
            os.write(handle, data)
        finally:
            os.close(handle)


def _blocks(tiles: pd.DataFrame, per_side: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Group tiles into square blocks of ``per_side`` grid tiles: (rows, cols) per block."""
    rows, cols = tiles["row"].to_numpy(int), tiles["col"].to_numpy(int)
    keys = pd.DataFrame({"r": rows // per_side, "c": cols // per_side})
    return [(rows[i], cols[i]) for i in keys.groupby(["r", "c"], sort=True).indices.values()]


def write_tile_store(
    info: SlideInfo,
    tiles: pd.DataFrame,
    tile_size: int,
    store_path: str | Path,
    compressor: str = "zstd",
    threads: int = 1,
    jpeg_quality: int = JPEG_QUALITY,
) -> pd.DataFrame:
    """Decode the given tiles of a slide and write them into a new Zarr store.

    Parameters
    ----------
    info : SlideInfo
        The slide and its resolution decision.
    tiles : pandas.DataFrame
        The tiles to write (whole tiles of the grid), with at least the columns
        of :func:`slidesnake.tissue.tile_grid`.
    tile_size : int
        Tile side in target pixels (the chunk size).
    store_path : str or Path
        The ``.zarr`` folder to create; it appears only once complete.
    compressor : str
        One of ``COMPRESSORS`` (see :func:`make_compressor`).
    threads : int
        Dask threads decoding, resampling and encoding tiles.
    jpeg_quality : int
        Quality of the ``jpeg`` compressor.

    Returns
    -------
    pandas.DataFrame
        The tile index as stored, with ``sharpness`` (blur score) and ``content_hash``
        (:func:`pixel_hash` of the stored tile) added.

    Raises
    ------
    SlideError
        When the slide's tiles cannot be read; no store is left behind.
    """
    codec = make_compressor(compressor, jpeg_quality)
    shape = (info.target_height, info.target_width, 3)
    index = tiles.loc[:, [c for c in INDEX_COLUMNS if c not in MEASURED]].reset_index(drop=True).copy()
    per_side = max(1, BLOCK_LEVEL_PX // math.ceil(tile_size * info.scale))
    blocks = _blocks(index, per_side)
    with SlideReader(info) as reader, atomic_path(store_path) as tmp:
        group = zarr.open_group(tmp, mode="w", zarr_format=3)
        array = group.create_array(
            IMAGE,
            shape=shape,
            chunks=(tile_size, tile_size, 3),
            dtype="uint8",
            fill_value=255,
            serializer=codec.serializer,
            compressors=codec.compressors,
            dimension_names=("y", "x", "c"),
        )
        writer = _ChunkWriter(tmp, array, codec)

        def tile_block(rows: np.ndarray, cols: np.ndarray) -> list[tuple[int, int, float, int]]:
            cache: dict = {}  # the block's decoded source tiles, shared by its target tiles
            block = np.empty((len(rows), tile_size, tile_size, 3), np.uint8)
            hashes = []
            for i, (row, col) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
                block[i] = reader.read_target(row * tile_size, col * tile_size, tile_size, tile_size, cache)
                writer.write(row, col, block[i])
                hashes.append(pixel_hash(block[i]))
            return list(zip(rows.tolist(), cols.tolist(), sharpness(block).tolist(), hashes, strict=True))

        tasks = [dask.delayed(tile_block, pure=False)(rows, cols) for rows, cols in blocks]
        parts = dask.compute(*tasks, scheduler="threads", num_workers=max(1, threads))
        measured = {(row, col): (score, digest) for part in parts for row, col, score, digest in part}
        keys = list(zip(index["row"].tolist(), index["col"].tolist(), strict=True))
        index["sharpness"] = [round(measured[key][0], 3) for key in keys]
        index["content_hash"] = np.array([measured[key][1] for key in keys], dtype=np.int64)
        _write_index(group, index)
        group.attrs.update(
            {
                "slidesnake": {
                    "slide_id": info.slide_id,
                    "source": info.path,
                    "sha256": info.sha256,
                    "reader": reader.reader,
                    "target_mpp": info.target_mpp,
                    "tile_mpp": info.tile_mpp,
                    "tile_size": tile_size,
                    "level": info.level,
                    "scale": info.scale,
                    "level0_per_target": info.level0_per_target,
                    "compressor": codec.name,
                    "lossless": codec.lossless,
                    "coordinates": "row/col: tile grid; y/x: target pixels; x0/y0: level-0 pixels",
                },
                "ome": ngff_attributes(info),
            }
        )
    log.info(
        "%s: wrote %d tiles of %d px (%s, %d blocks) to %s",
        info.slide_id,
        len(index),
        tile_size,
        codec.name,
        len(blocks),
        store_path,
    )
    return index


def pixel_hash(tile: np.ndarray) -> int:
    """A 64-bit hash of a tile's pixels: equal for identical tiles, whichever slide they come from."""
    return int.from_bytes(
        hashlib.blake2b(np.ascontiguousarray(tile).tobytes(), digest_size=8).digest(), "little", signed=True
    )


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
