"""Zarr stores: one tile store per slide (:class:`TileStore`), codecs, NGFF metadata, probability maps."""

from .codecs import COMPRESSORS, Codec, make_codec
from .tiles import INDEX_COLUMNS, TileStore
from .writer import write_tile_store

__all__ = ["COMPRESSORS", "INDEX_COLUMNS", "Codec", "TileStore", "make_codec", "write_tile_store"]
