"""Zarr stores: one tile store per slide. The face exports the read side (:class:`TileStore`); writing
(``store.writer``), codecs (``store.codecs``), NGFF metadata and probability maps are imported from
their modules, so a reader of tiles never loads (nor depends on) the writer.
"""

from .tiles import INDEX_COLUMNS, TileStore

__all__ = ["INDEX_COLUMNS", "TileStore"]
