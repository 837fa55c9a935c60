"""A slide's tile store, opened read-only: one self-describing Zarr v3 group.

- ``image``: the slide at the target resolution, shape (row, column, 3) uint8,
  one chunk per tile, sharded: one file per 32 x 32 tiles. Only tissue tiles are
  written; every other chunk reads as the fill value, white.
- ``tiles``: the tile index (one entry per written tile): a (tile, column) ``int64``
  array and a ``float32`` one, their column names in the group's attributes
  (:data:`INDEX_COLUMNS` holds them all).
- group attributes ``slidesnake`` (slide id, source file and checksum, reader,
  the tiling plan, compressor) and ``ome`` (OME-NGFF 0.5, see :mod:`.ngff`).

Everything a later stage needs (plan, tile size, index) comes from the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path

import google_crc32c
import numpy as np
import pandas as pd
import zarr
from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec, ShardingCodecIndexLocation

from ..wsi.resolution import TilePlan
from .codecs import COMPRESSORS, make_codec  # the module registers the JPEG codec for every reader

IMAGE = "image"
INDEX = "tiles"
#: Tile index columns: grid position, target-pixel and level-0 corners, tissue share, blur score, pixel hash.
INDEX_COLUMNS = ("row", "col", "y", "x", "x0", "y0", "tissue_fraction", "sharpness", "content_hash")
FLOAT_COLUMNS = ("tissue_fraction", "sharpness")
COORDINATES = "row/col: tile grid; y/x: target pixels; x0/y0: level-0 pixels"


INT_COLUMNS = tuple(c for c in INDEX_COLUMNS if c not in FLOAT_COLUMNS)
#: The sharding codec's marker of a chunk that is not stored in its shard.
MISSING = np.iinfo(np.uint64).max


def write_index(group: zarr.Group, index: pd.DataFrame) -> None:
    """Store a tile index as the ``tiles`` subgroup: a 2-D array per dtype, column names as attributes."""
    tiles = group.create_group(INDEX, attributes={"int64": list(INT_COLUMNS), "float32": list(FLOAT_COLUMNS)})
    for dtype, columns in (("int64", INT_COLUMNS), ("float32", FLOAT_COLUMNS)):
        values = index[list(columns)].to_numpy(dtype).reshape(len(index), len(columns))
        tiles.create_array(dtype, data=values, chunks=(max(1, len(index)), len(columns)))


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
        parts = [pd.DataFrame(tiles[dtype][:], columns=tiles.attrs[dtype]) for dtype in ("int64", "float32")]
        return pd.concat(parts, axis=1)[list(INDEX_COLUMNS)]

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

    def windows(self, corners: pd.DataFrame) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Read tiles a shard at a time: one Zarr read per shard (and a tile's margin), not one per tile.

        Parameters
        ----------
        corners : pandas.DataFrame
            Top-left corners ``y``, ``x`` in target pixels (aligned with the grid or shifted, e.g. by a
            prediction stride), inside the image.

        Yields
        ------
        tuple of numpy.ndarray
            The positions (in ``corners``) of one shard's tiles and those tiles, (tile, row, column, 3)
            uint8, shard by shard in row-major order.
        """
        size = self.tile_size
        span = self.image.shards[0] if self.image.shards else size
        ys, xs = corners["y"].to_numpy(int), corners["x"].to_numpy(int)
        keys = pd.DataFrame({"r": ys // span, "c": xs // span})
        shards = keys.groupby(["r", "c"], sort=True).indices.items()
        if self._chunk_decoder is not None and not ((ys % size).any() or (xs % size).any()):
            for (r, c), positions in shards:
                yield positions, self._read_shard_tiles((r, c), ys[positions] // size, xs[positions] // size)
            return
        for (r, c), positions in shards:
            y0, x0 = r * span, c * span
            region = self.image[y0 : y0 + span + size, x0 : x0 + span + size]
            tiles = np.stack(
                [
                    region[y - y0 : y - y0 + size, x - x0 : x - x0 + size]
                    for y, x in zip(ys[positions], xs[positions], strict=True)
                ]
            )
            yield positions, tiles

    @cached_property
    def _chunk_decoder(self) -> Callable[[bytes], np.ndarray] | None:
        """The decoder of one stored chunk, when the image is sharded as slidesnake writes it, else None.

        That is: one tile per inner chunk, the shard index at the end of the file in little-endian
        uint64 with its CRC32C (the sharding codec's defaults), and inner codecs those of the store's
        ``compressor``. Any other layout is read through Zarr.
        """
        sharding = self.image.metadata.codecs[0]
        name = self.attrs.get("compressor")
        if not isinstance(sharding, ShardingCodec) or name not in COMPRESSORS:
            return None
        codec = make_codec(name, jpeg_quality=90)  # the quality does not change decoding
        serializer = BytesCodec if codec.serializer == "auto" else type(codec.serializer)
        layout = (
            sharding.chunk_shape == (self.tile_size, self.tile_size, 3)
            and sharding.index_location == ShardingCodecIndexLocation.end
            and sharding.index_codecs == (BytesCodec(endian="little"), Crc32cCodec())
            and isinstance(sharding.codecs[0], serializer)
            and tuple(sharding.codecs[1:]) == tuple(codec.compressors)
        )
        return codec.decode if layout else None

    def _read_shard_tiles(self, shard: tuple[int, int], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Tiles at grid ``rows``, ``cols`` of one shard, decoded from the shard file in one read.

        The same pixels as reading them through Zarr (tested), without Zarr's per-chunk cost, which
        is ten times the decoding's; a tile not stored reads as the fill value.
        """
        size = self.tile_size
        per_side = self.image.shards[0] // size
        out = np.full((len(rows), size, size, 3), self.image.fill_value, np.uint8)
        path = self.path / IMAGE / self.image.metadata.encode_chunk_key((*shard, 0))
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # a shard without tissue is not written
            return out
        index_bytes = per_side * per_side * 16
        index, checksum = data[-index_bytes - 4 : -4], data[-4:]
        if google_crc32c.value(index) != int.from_bytes(checksum, "little"):
            msg = f"{path}: the shard index fails its CRC32C check (a damaged file); rerun its ingest job"
            raise OSError(msg)
        view = memoryview(data)
        places = np.frombuffer(index, "<u8").reshape(per_side, per_side, 2)
        inner = zip((rows % per_side).tolist(), (cols % per_side).tolist(), strict=True)
        for i, (row, col) in enumerate(inner):
            offset, length = places[row, col].tolist()
            if offset != MISSING:
                out[i] = self._chunk_decoder(view[offset : offset + length]).reshape(size, size, 3)
        return out

    def disk_bytes(self) -> int:
        """Bytes of every file of the store."""
        return folder_bytes(self.path)


def folder_bytes(folder: str | Path) -> int:
    """Total size of the files below a folder."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
