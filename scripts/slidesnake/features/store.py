"""A feature store: one slide's tile features from one encoder, as one self-describing Zarr v3 group.

This module owns the format; everything that reads or writes feature stores goes through
:func:`write_feature_store` and :class:`FeatureStore`. The group holds:

- ``features``: ``float16`` (tile, feature), dimension names ``("tile", "feature")``, chunks of
  up to :data:`CHUNK_TILES` tiles by every feature (a slide is a few chunk files), Zstandard.
  Row ``i`` is the tile of row ``i`` of the tile index. Every value is finite (the writer refuses
  NaN and values beyond float16's range, 65504).
- ``tiles``: the tile index, a subgroup with a 2-D array per kind of column, as the tile store's:
  ``int64`` (tile, column): always ``row, col, y, x, x0, y0`` first, then any other integer (or
  boolean) columns; ``float64`` (tile, column): floating-point columns, if any; ``text``
  (tile, column) of Zarr's ``string`` type: any other column (ids), if any. The subgroup's
  attributes ``int64``, ``float64``, ``text`` list each array's column names; an array without
  columns is not written. ``row, col`` are the tile's cell in the slide's tile grid, ``y, x`` its
  top-left corner in target pixels, ``x0, y0`` its top-left corner in level-0 pixels (what
  TRIDENT's and STAMP's coordinates are measured from).
- group attributes ``slidesnake``: the caller's attributes (at least ``slide_id``, ``encoder``,
  and the geometry ``tile_size`` (target pixels), ``tile_mpp`` (microns per target pixel) and
  ``level0_per_target`` (level-0 pixels per target pixel); :func:`store_attributes` makes them
  from a tile store) and, added by the writer: ``level0_mpp`` (when not given: ``tile_mpp /
  level0_per_target``), ``tile_size_level0`` (tile side in level-0 pixels, a float),
  ``coordinates`` (:data:`COORDINATES`), ``count`` (tiles), ``dim`` (features per tile) and
  ``format_version`` (:data:`FORMAT_VERSION`).

An excluded slide (no tiles) has a store all the same: ``features`` of shape (0, dim) and an
empty index; ``dim`` is the encoder's output size when the caller knows it, else 0.

The store is written under a temporary name and renamed into place when complete
(:func:`slidesnake.io.atomic_path`), so an interrupted job leaves no store at all; each Zarr
write runs inside :func:`slidesnake.interrupts.interrupts_held`, so a termination signal never
races the removal of the temporary folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import zarr
from zarr.codecs import ZstdCodec

from ..interrupts import interrupts_held
from ..io import atomic_path

if TYPE_CHECKING:  # only their attributes are read: no slide libraries to import
    from ..store.tiles import TileStore
    from ..wsi.resolution import TilePlan

FEATURES = "features"
INDEX = "tiles"
#: Index columns every store has, in this order, first in its ``int64`` array.
INDEX_COLUMNS = ("row", "col", "y", "x", "x0", "y0")
#: What the index's coordinates mean (stored in the attributes).
COORDINATES = "x0, y0: level-0 pixels of each tile's top-left corner"
#: Tiles per chunk of the ``features`` array (4096 tiles of 1536 float16 features: 12 MiB).
CHUNK_TILES = 4096
#: Version of this layout; a reader refuses a store of a newer one.
FORMAT_VERSION = 1
#: Attributes the caller must give.
REQUIRED = ("slide_id", "encoder", "tile_size", "tile_mpp", "level0_per_target")
#: Largest finite float16.
FLOAT16_MAX = float(np.finfo(np.float16).max)


def geometry_attributes(plan: TilePlan) -> dict[str, Any]:
    """The geometry attributes of a feature store made from tiles cut by ``plan``.

    Parameters
    ----------
    plan : TilePlan
        The slide's tiling plan.

    Returns
    -------
    dict
        ``tile_size``, ``tile_mpp``, ``level0_per_target``, ``level0_mpp`` and the whole ``plan``.
    """
    return {
        "tile_size": plan.tile_size,
        "tile_mpp": plan.tile_mpp,
        "level0_per_target": plan.level0_per_target,
        "level0_mpp": plan.tile_mpp / plan.level0_per_target,
        "plan": plan.to_dict(),
    }


def store_attributes(tiles: TileStore, *, encoder: str, **more: Any) -> dict[str, Any]:
    """The attributes of the feature store of a tile store's tiles.

    Parameters
    ----------
    tiles : TileStore
        The slide's tile store.
    encoder : str
        The encoder's name.
    **more
        Further attributes (e.g. ``encoder_attributes``: the encoder's own description, ``code``).

    Returns
    -------
    dict
        ``slide_id``, ``encoder``, the geometry (:func:`geometry_attributes`), ``status`` and
        ``reason`` of the tile store, ``tile_store`` (its path), then ``more``.
    """
    return {
        "slide_id": tiles.slide_id,
        "encoder": encoder,
        **geometry_attributes(tiles.plan),
        "status": tiles.status,
        "reason": tiles.reason,
        "tile_store": str(tiles.path),
        **more,
    }


def _index_parts(index: pd.DataFrame, tile_size: int) -> dict[str, tuple[list[str], np.ndarray]]:
    """Split a tile index into the stored arrays: kind -> (column names, (tile, column) values)."""
    missing = [c for c in ("row", "col", "x0", "y0") if c not in index.columns]
    if missing:
        msg = f"the tile index lacks column(s) {', '.join(missing)}"
        raise ValueError(msg)
    index = index.reset_index(drop=True)
    if "y" not in index.columns:
        index = index.assign(y=index["row"].astype("int64") * tile_size)
    if "x" not in index.columns:
        index = index.assign(x=index["col"].astype("int64") * tile_size)
    kinds: dict[str, list[str]] = {"int64": list(INDEX_COLUMNS), "float64": [], "text": []}
    for column in index.columns:
        if column in INDEX_COLUMNS:
            continue
        if not isinstance(column, str):
            msg = f"tile index column names must be text, not {column!r}"
            raise ValueError(msg)
        dtype = index[column].dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
            kinds["int64"].append(column)
        elif pd.api.types.is_float_dtype(dtype):
            kinds["float64"].append(column)
        else:
            kinds["text"].append(column)
    parts = {}
    n = len(index)
    for kind, columns in kinds.items():
        if not columns:
            continue
        if kind == "text":
            frame = index[columns].astype(object).where(index[columns].notna(), "")
            values = frame.astype(str).to_numpy(dtype=object)
        else:
            frame = index[columns]
            if frame.isna().to_numpy().any() and kind == "int64":
                msg = f"the tile index has missing values in column(s) {', '.join(columns)}"
                raise ValueError(msg)
            values = frame.to_numpy(kind)
        parts[kind] = (columns, values.reshape(n, len(columns)))
    return parts


def _float16(block: np.ndarray, start: int) -> np.ndarray:
    """A block of features as float16; an error for values that are not finite or too large for it."""
    block = np.asarray(block, dtype=np.float32)
    finite = np.isfinite(block) & (np.abs(block) <= FLOAT16_MAX)
    if not finite.all():
        tile = start + int(np.argwhere(~finite)[0][0])
        msg = (
            f"features of tile {tile} are NaN, infinite or beyond float16's range "
            f"(|x| <= {FLOAT16_MAX:g}): {block[tile - start][~finite[tile - start]][:3].tolist()}"
        )
        raise ValueError(msg)
    return block.astype(np.float16)


def write_feature_store(
    path: str | Path, *, features: Any, index: pd.DataFrame, attributes: Mapping[str, Any]
) -> None:
    """Write one slide's tile features as a feature store (the layout is in this module's docstring).

    Parameters
    ----------
    path : str or Path
        The ``.zarr`` folder to create; it appears only once complete (an existing one is replaced).
    features : array-like
        (tile, feature) values, e.g. float32 from an encoder: a NumPy array, or an array that is
        read a chunk of tiles at a time (h5py or Zarr). Stored as float16.
    index : pandas.DataFrame
        One row per tile, in the order of ``features``: at least ``row``, ``col``, ``x0``, ``y0``
        (level-0 pixels of the top-left corner); ``y``, ``x`` (target pixels) default to
        ``row``, ``col`` times the tile size. Other columns are kept.
    attributes : Mapping
        At least :data:`REQUIRED`; stored as the group's ``slidesnake`` attributes (JSON values)
        with the derived ones (module docstring).

    Raises
    ------
    ValueError
        When the features are not (tile, feature), not one row per index row, not finite or beyond
        float16's range, or when the index or attributes lack what is required. No store is left.
    """
    shape = tuple(getattr(features, "shape", ()))
    if len(shape) != 2:
        msg = f"features must be (tile, feature), not of shape {shape}"
        raise ValueError(msg)
    count, dim = int(shape[0]), int(shape[1])
    if count != len(index):
        msg = f"{count} feature rows for {len(index)} tiles in the index"
        raise ValueError(msg)
    missing = [key for key in REQUIRED if key not in attributes]
    if missing:
        msg = f"the feature store's attributes lack {', '.join(missing)}"
        raise ValueError(msg)
    attrs = dict(attributes)
    tile_size, per_target = int(attrs["tile_size"]), float(attrs["level0_per_target"])
    attrs.setdefault("level0_mpp", float(attrs["tile_mpp"]) / per_target)
    attrs.update(
        coordinates=COORDINATES,
        tile_size_level0=tile_size * per_target,
        count=count,
        dim=dim,
        format_version=FORMAT_VERSION,
    )
    parts = _index_parts(index, tile_size)
    chunk = max(1, min(count, CHUNK_TILES))
    with atomic_path(path) as tmp:
        with interrupts_held():  # Zarr writes through its own thread: never cut (see slidesnake.interrupts)
            group = zarr.open_group(tmp, mode="w", zarr_format=3)
            array = group.create_array(
                FEATURES,
                shape=(count, dim),
                chunks=(chunk, max(1, dim)),
                dtype="float16",
                fill_value=0,
                compressors=ZstdCodec(level=3),
                dimension_names=("tile", "feature"),
            )
        for start in range(0, count, chunk):
            block = _float16(features[start : start + chunk], start)
            with interrupts_held():
                array[start : start + len(block)] = block
        with interrupts_held():
            tiles = group.create_group(
                INDEX, attributes={kind: columns for kind, (columns, _) in parts.items()}
            )
            for kind, (columns, values) in parts.items():
                tiles.create_array(
                    kind,
                    shape=values.shape,
                    chunks=(max(1, count), len(columns)),
                    dtype=str if kind == "text" else kind,
                    dimension_names=("tile", "column"),
                )[:] = values
            group.attrs["slidesnake"] = attrs


class FeatureStore:
    """A feature store written by :func:`write_feature_store`, opened read-only.

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

    Raises
    ------
    ValueError
        When the folder is not a feature store, or one of a newer layout.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._group = zarr.open_group(self.path, mode="r")
        attrs = self._group.attrs.get("slidesnake")
        if not isinstance(attrs, dict) or FEATURES not in self._group or "format_version" not in attrs:
            msg = f"{self.path} is not a feature store (no '{FEATURES}' array or 'slidesnake' attributes)"
            raise ValueError(msg)
        if int(attrs["format_version"]) > FORMAT_VERSION:
            msg = (
                f"{self.path} is a feature store of format {attrs['format_version']}; "
                f"this slidesnake reads up to {FORMAT_VERSION}"
            )
            raise ValueError(msg)
        self.attrs: dict[str, Any] = dict(attrs)

    @property
    def slide_id(self) -> str:
        """The slide's id."""
        return str(self.attrs["slide_id"])

    @property
    def encoder(self) -> str:
        """The encoder's name."""
        return str(self.attrs["encoder"])

    @property
    def count(self) -> int:
        """Number of tiles."""
        return int(self.attrs["count"])

    @property
    def dim(self) -> int:
        """Features per tile."""
        return int(self.attrs["dim"])

    def __len__(self) -> int:
        return self.count

    @property
    def tile_size(self) -> int:
        """Tile side in target pixels."""
        return int(self.attrs["tile_size"])

    @property
    def tile_mpp(self) -> float:
        """Microns per target pixel."""
        return float(self.attrs["tile_mpp"])

    @property
    def level0_per_target(self) -> float:
        """Level-0 pixels per target pixel."""
        return float(self.attrs["level0_per_target"])

    @property
    def level0_mpp(self) -> float:
        """Microns per level-0 pixel."""
        return float(self.attrs["level0_mpp"])

    @property
    def tile_size_level0(self) -> float:
        """Tile side in level-0 pixels."""
        return float(self.attrs["tile_size_level0"])

    @property
    def array(self) -> zarr.Array:
        """The stored ``features`` array (float16), for reading part of it."""
        return self._group[FEATURES]

    @cached_property
    def features(self) -> np.ndarray:
        """The features, (tile, feature) float32."""
        return np.asarray(self.array[:], dtype=np.float32)

    @cached_property
    def index(self) -> pd.DataFrame:
        """The tile index: ``row, col, y, x, x0, y0`` (int64), then the other stored columns."""
        tiles = self._group[INDEX]
        parts = []
        for kind in ("int64", "float64", "text"):
            columns = list(tiles.attrs.get(kind, []))
            if not columns:
                continue
            values = tiles[kind][:]
            if kind == "text":
                part = pd.DataFrame(values.astype(object), columns=columns).astype(str)
            else:
                part = pd.DataFrame(values, columns=columns)
            parts.append(part)
        return pd.concat(parts, axis=1)

    @property
    def coords_level0(self) -> np.ndarray:
        """Top-left corners ``x0, y0`` in level-0 pixels, (tile, 2) int64."""
        return self.index[["x0", "y0"]].to_numpy(np.int64).reshape(-1, 2)
