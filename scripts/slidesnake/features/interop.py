"""Feature stores to and from the HDF5 feature files of TRIDENT and STAMP.

Both tools store one slide's tile features with the top-left corner of each tile, measured from the
slide's level-0 origin; they differ in units and attributes. The layouts below follow their code, at
the commits and in the files named:

TRIDENT (github.com/mahmoodlab/TRIDENT at a91fa84, 2026-06; ``trident/IO.py`` ``save_h5`` and
``coords_to_h5``, ``trident/wsi_objects/WSI.py`` ``extract_patch_features``): datasets
``features`` (tile, feature) float32 with attributes ``name`` (slide), ``savetodir`` and
``encoder``, and ``coords`` (tile, 2) int64, ``x, y`` in level-0 pixels, with the attributes of
the patching step: ``patch_size`` (target pixels), ``patch_size_level0``, ``level0_magnification``,
``target_magnification``, ``overlap``, ``name``, ``savetodir``, ``level0_width``,
``level0_height``. Both datasets are chunked along the tiles and resizable there (``maxshape``
``(None, ...)``) as ``save_h5`` makes them. TRIDENT's magnifications are integers with
``mpp = 10 / magnification``; ``level0_magnification`` is its bucket of the level-0 MPP
(``WSI._fetch_magnification``), ``target_magnification`` that divided by the level-0 pixels per
target pixel. A slide without tiles has ``features`` of shape (0, dim), or (0,) when dim is 0.

STAMP (github.com/KatherLab/STAMP at c54ce06, 2026-04, version 2.5.0;
``src/stamp/preprocessing/__init__.py`` ``extract_``, read by ``src/stamp/modeling/data.py``
``get_coords``): datasets ``feats`` (tile, feature) float16 and ``coords`` (tile, 2) float32,
``x, y`` in microns, and file attributes ``stamp_version``, ``extractor``, ``unit`` = ``"um"``,
``tile_size_um``, ``tile_size_px``, ``code_hash`` (8 hex digits of the code that made the
features) and ``feat_type`` = ``"tile"``. (``encoder`` and ``precision`` are attributes of STAMP's
slide and patient encodings, not of tile features.) STAMP refuses a file whose ``stamp_version``
is newer than itself, so exports say :data:`STAMP_VERSION`: the first version whose tile files
have these attributes (``tile_size_px`` since b67dbbc, ``extractor`` since c1949ee, both 2.1.0).

Both exports also carry a file attribute ``slidesnake``: the feature store's attributes as JSON,
which the tools ignore and an import uses to restore them. Imports read the files the tools
write, with or without it.

Imports into feature stores are in :mod:`slidesnake.features.from_h5`, the command line
``slidesnake-features`` in :mod:`slidesnake.features.cli`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..codehash import code_version
from ..io import atomic_path
from .store import FeatureStore

FORMATS = ("trident", "stamp")
#: The ``stamp_version`` exports declare (see the module docstring).
STAMP_VERSION = "2.1.0"
#: Tiles per HDF5 chunk of the exported datasets.
H5_CHUNK_TILES = 1024


def trident_magnification(mpp: float) -> int:
    """TRIDENT's magnification of a level-0 MPP (``WSI._fetch_magnification``; beyond it ``10 / mpp``)."""
    for limit, magnification in ((0.16, 80), (0.2, 60), (0.3, 40), (0.6, 20), (1.2, 10), (2.4, 5)):
        if mpp < limit:
            return magnification
    return max(1, round(10 / mpp))


def _chunks(count: int, width: int | None) -> tuple[int, ...]:
    """HDF5 chunks of a (tile, width) dataset, or of a (tile,) one when width is None."""
    rows = max(1, min(count, H5_CHUNK_TILES))
    return (rows,) if width is None else (rows, max(1, width))


def _dataset(h5: h5py.File, name: str, values: np.ndarray, attrs: dict[str, Any]) -> None:
    """Write a dataset resizable along the tiles (as TRIDENT's ``save_h5``), with its attributes."""
    width = values.shape[1] if values.ndim == 2 else None
    dataset = h5.create_dataset(
        name, data=values, maxshape=(None, *values.shape[1:]), chunks=_chunks(len(values), width)
    )
    for key, value in attrs.items():
        dataset.attrs[key] = "None" if value is None else value  # as save_h5 writes None


def _code_hash(store: FeatureStore) -> str:
    """8 hex digits of the code that made the features: the store's ``code``, else this library's."""
    code = store.attrs.get("code") or code_version(Path(__file__).with_name("store.py"))
    return str(code)[:8]


def _level0_size(store: FeatureStore) -> tuple[int | None, int | None]:
    """The slide's level-0 width and height, from the attributes (or the tiling plan), else None."""
    if "level0_width" in store.attrs:
        return int(store.attrs["level0_width"]), int(store.attrs["level0_height"])
    plan = store.attrs.get("plan")
    if isinstance(plan, dict) and plan.get("target_width"):
        per_target = store.level0_per_target
        return round(plan["target_width"] * per_target), round(plan["target_height"] * per_target)
    return None, None


def export_trident_h5(store: FeatureStore | str | Path, out: str | Path) -> Path:
    """Write a feature store as TRIDENT's patch features file (layout in the module docstring).

    Parameters
    ----------
    store : FeatureStore, str or Path
        The feature store.
    out : str or Path
        The ``.h5`` file to write (atomically; TRIDENT names it ``<slide>.h5``).

    Returns
    -------
    Path
        ``out``.
    """
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    out = Path(out)
    level0_mag = trident_magnification(store.level0_mpp)
    width, height = _level0_size(store)
    features = store.features if store.dim else np.empty((0,), np.float32)
    coords_attrs = {
        "patch_size": store.tile_size,
        "patch_size_level0": round(store.tile_size_level0),
        "level0_magnification": level0_mag,
        "target_magnification": max(1, round(level0_mag / store.level0_per_target)),
        "overlap": 0,
        "name": store.slide_id,
        "savetodir": str(out.parent),
        "level0_width": width,
        "level0_height": height,
    }
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as h5:
        _dataset(
            h5,
            "features",
            features,
            {"name": store.slide_id, "savetodir": str(out.parent), "encoder": store.encoder},
        )
        _dataset(h5, "coords", store.coords_level0, coords_attrs)
        h5.attrs["slidesnake"] = json.dumps(store.attrs)
    return out


def export_stamp_h5(store: FeatureStore | str | Path, out: str | Path) -> Path:
    """Write a feature store as STAMP's tile features file (layout in the module docstring).

    Parameters
    ----------
    store : FeatureStore, str or Path
        The feature store.
    out : str or Path
        The ``.h5`` file to write (atomically; STAMP names it after the slide file).

    Returns
    -------
    Path
        ``out``.
    """
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    out = Path(out)
    coords_um = (store.coords_level0 * store.level0_mpp).astype(np.float32)
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as h5:
        h5["coords"] = coords_um
        h5["feats"] = np.asarray(store.array[:], dtype=np.float16).reshape(store.count, store.dim)
        h5.attrs["stamp_version"] = STAMP_VERSION
        h5.attrs["extractor"] = store.encoder
        h5.attrs["unit"] = "um"
        h5.attrs["tile_size_um"] = store.tile_size * store.tile_mpp
        h5.attrs["tile_size_px"] = store.tile_size
        h5.attrs["code_hash"] = _code_hash(store)
        h5.attrs["feat_type"] = "tile"
        h5.attrs["slidesnake"] = json.dumps(store.attrs)
    return out


def _attrs(node: h5py.HLObject) -> dict[str, Any]:
    """An HDF5 object's attributes as Python values (text as str, NumPy scalars as numbers)."""
    out = {}
    for key, value in node.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        out[key] = value
    return out


def _features(h5: h5py.File, name: str, path: Path) -> np.ndarray:
    if name not in h5 or not isinstance(h5[name], h5py.Dataset):
        msg = f"{path}: no '{name}' dataset"
        raise ValueError(msg)
    features = np.asarray(h5[name][()], dtype=np.float32)
    if features.ndim == 1 and features.size == 0:
        features = features.reshape(0, 0)
    if features.ndim != 2:
        msg = f"{path}: '{name}' is of shape {features.shape}, not (tile, feature): slide-level features?"
        raise ValueError(msg)
    return features


def _coords(h5: h5py.File, count: int, path: Path) -> np.ndarray:
    if "coords" not in h5:
        msg = f"{path}: no 'coords' dataset"
        raise ValueError(msg)
    coords = np.asarray(h5["coords"][()])
    coords = coords.reshape(0, 2) if coords.size == 0 else coords
    if coords.shape != (count, 2):
        msg = f"{path}: 'coords' is of shape {coords.shape}, not ({count}, 2)"
        raise ValueError(msg)
    return coords


def read_trident_h5(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Read a TRIDENT patch features file.

    Parameters
    ----------
    path : str or Path
        The ``.h5`` file.

    Returns
    -------
    tuple of (numpy.ndarray, numpy.ndarray, dict)
        The features (tile, feature) float32; the tiles' top-left corners ``x, y`` (tile, 2) int64
        in level-0 pixels; the attributes ``{"coords": ..., "features": ..., "file": ...}`` of
        each dataset and of the file.
    """
    path = Path(path)
    with h5py.File(path, "r") as h5:
        features = _features(h5, "features", path)
        coords = np.rint(_coords(h5, len(features), path)).astype(np.int64)
        attrs = {"coords": _attrs(h5["coords"]), "features": _attrs(h5["features"]), "file": _attrs(h5)}
    return features, coords, attrs


def read_stamp_h5(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Read a STAMP tile features file (STAMP 2.x: coordinates in microns).

    Parameters
    ----------
    path : str or Path
        The ``.h5`` file.

    Returns
    -------
    tuple of (numpy.ndarray, numpy.ndarray, dict)
        The features (tile, feature) float32; the tiles' top-left corners ``x, y`` (tile, 2)
        float64 in microns; the file's attributes, ``tile_size_um`` always among them.

    Raises
    ------
    ValueError
        For a file of STAMP 1 (coordinates in 224-pixel units) or a slide or patient encoding.
    """
    path = Path(path)
    with h5py.File(path, "r") as h5:
        attrs = _attrs(h5)
        if attrs.get("feat_type", "tile") != "tile":
            msg = f"{path}: STAMP {attrs['feat_type']}-level features, not tile features"
            raise ValueError(msg)
        features = _features(h5, "feats", path)
        coords = _coords(h5, len(features), path).astype(np.float64)
    if "tile_size_um" not in attrs:
        if attrs.get("unit") == "um" and attrs.get("tile_size"):
            attrs["tile_size_um"] = float(attrs["tile_size"])  # STAMP 2.0
        else:
            msg = f"{path}: coordinates without a unit (STAMP 1?); re-extract the features with STAMP 2"
            raise ValueError(msg)
    return features, coords, attrs
