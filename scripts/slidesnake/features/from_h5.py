"""Feature files of TRIDENT and STAMP (HDF5) read into feature stores.

The layouts are described in :mod:`slidesnake.features.interop`, which also reads the files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .interop import read_stamp_h5, read_trident_h5
from .store import FeatureStore, write_feature_store


def level0_index(x0: np.ndarray, y0: np.ndarray, *, tile_size: int, level0_per_target: float) -> pd.DataFrame:
    """A feature store's tile index from level-0 corners: ``row, col, y, x, x0, y0``.

    Parameters
    ----------
    x0, y0 : numpy.ndarray
        Top-left corners in level-0 pixels.
    tile_size : int
        Tile side in target pixels.
    level0_per_target : float
        Level-0 pixels per target pixel.

    Returns
    -------
    pandas.DataFrame
        ``y, x``: the corners in target pixels (rounded); ``row, col``: the grid cell holding them.
    """
    x0, y0 = np.asarray(x0, np.int64), np.asarray(y0, np.int64)
    x = np.rint(x0 / level0_per_target).astype(np.int64)
    y = np.rint(y0 / level0_per_target).astype(np.int64)
    return pd.DataFrame({"row": y // tile_size, "col": x // tile_size, "y": y, "x": x, "x0": x0, "y0": y0})


def _restored(attrs: dict[str, Any]) -> dict[str, Any]:
    """The feature store attributes an export carried (empty for the tools' own files)."""
    text = attrs.get("slidesnake")
    return json.loads(text) if isinstance(text, str) else {}


def _import_attributes(
    restored: dict, found: dict, geometry: dict, *, slide_id: str | None, encoder: str | None, source: dict
) -> dict[str, Any]:
    """The attributes of an imported store: restored ones, else what the file says; arguments win."""
    derived = ("coordinates", "tile_size_level0", "count", "dim", "format_version")
    attrs = {k: v for k, v in restored.items() if k not in derived} or found
    attrs.update(geometry)
    if slide_id:
        attrs["slide_id"] = slide_id
    if encoder:
        attrs["encoder"] = encoder
    attrs["imported_from"] = source
    return attrs


def _geometry(tile_size: int, level0_per_target: float, level0_mpp: float) -> dict[str, Any]:
    return {
        "tile_size": int(tile_size),
        "tile_mpp": level0_mpp * level0_per_target,
        "level0_per_target": float(level0_per_target),
        "level0_mpp": float(level0_mpp),
    }


def import_trident_h5(
    path: str | Path,
    store: str | Path,
    *,
    mpp: float | None = None,
    slide_id: str | None = None,
    encoder: str | None = None,
) -> FeatureStore:
    """Write a TRIDENT patch features file as a feature store.

    Parameters
    ----------
    path : str or Path
        The TRIDENT ``.h5`` file.
    store : str or Path
        The feature store to write.
    mpp : float, optional
        The slide's level-0 microns per pixel; default: what a slidesnake export recorded, else
        ``10 / level0_magnification`` (TRIDENT's own convention, a rough value).
    slide_id : str, optional
        Default: the ``coords`` dataset's ``name`` attribute, else the file name without ``.h5``.
    encoder : str, optional
        Default: the ``features`` dataset's ``encoder`` attribute.

    Returns
    -------
    FeatureStore
        The new store.

    Raises
    ------
    ValueError
        When the file lacks TRIDENT's datasets or attributes (e.g. a CLAM coordinates file).
    """
    path = Path(path)
    features, coords, attrs = read_trident_h5(path)
    patch = attrs["coords"]
    restored = _restored(attrs["file"])
    if restored:
        tile_size, per_target = int(restored["tile_size"]), float(restored["level0_per_target"])
        level0_mpp = float(mpp if mpp is not None else restored["level0_mpp"])
    else:
        needed = ("patch_size", "level0_magnification", "target_magnification")
        if any(key not in patch for key in needed):
            msg = f"{path}: 'coords' lacks TRIDENT's attributes {', '.join(needed)} (a CLAM file?)"
            raise ValueError(msg)
        tile_size = int(patch["patch_size"])
        per_target = float(patch["level0_magnification"]) / float(patch["target_magnification"])
        level0_mpp = float(mpp) if mpp is not None else 10.0 / float(patch["level0_magnification"])
    name = str(attrs["features"].get("encoder", "None"))
    found = {"slide_id": str(patch.get("name", path.stem)), "encoder": name if name != "None" else "unknown"}
    for key in ("level0_width", "level0_height"):
        if isinstance(patch.get(key), int):
            found[key] = patch[key]
    attributes = _import_attributes(
        restored,
        found,
        _geometry(tile_size, per_target, level0_mpp),
        slide_id=slide_id,
        encoder=encoder,
        source={"format": "trident", "path": str(path), "coords": patch, "features": attrs["features"]},
    )
    index = level0_index(coords[:, 0], coords[:, 1], tile_size=tile_size, level0_per_target=per_target)
    write_feature_store(store, features=features, index=index, attributes=attributes)
    return FeatureStore(store)


def import_stamp_h5(
    path: str | Path,
    store: str | Path,
    *,
    mpp: float | None = None,
    slide_id: str | None = None,
    encoder: str | None = None,
) -> FeatureStore:
    """Write a STAMP tile features file as a feature store.

    Parameters
    ----------
    path : str or Path
        The STAMP ``.h5`` file.
    store : str or Path
        The feature store to write.
    mpp : float, optional
        The slide's level-0 microns per pixel, to turn STAMP's microns into level-0 pixels;
        required unless the file is a slidesnake export (which records it).
    slide_id : str, optional
        Default: the file's name without ``.h5`` (STAMP names it after the slide file).
    encoder : str, optional
        Default: the file's ``extractor`` attribute.

    Returns
    -------
    FeatureStore
        The new store.

    Raises
    ------
    ValueError
        When ``mpp`` is needed but not given, or the file is not STAMP 2 tile features.
    """
    path = Path(path)
    features, coords_um, attrs = read_stamp_h5(path)
    restored = _restored(attrs)
    if mpp is None:
        if not restored:
            msg = f"{path}: STAMP's coordinates are in microns; give the slide's level-0 MPP (--mpp)"
            raise ValueError(msg)
        mpp = float(restored["level0_mpp"])
    tile_size_um = float(attrs["tile_size_um"])
    tile_size = int(attrs.get("tile_size_px") or round(tile_size_um / mpp))
    per_target = tile_size_um / tile_size / mpp
    found = {"slide_id": path.stem, "encoder": str(attrs.get("extractor") or "unknown")}
    x0, y0 = np.rint(coords_um / mpp).astype(np.int64).T
    index = level0_index(x0, y0, tile_size=tile_size, level0_per_target=per_target)
    attributes = _import_attributes(
        restored,
        found,
        _geometry(tile_size, per_target, float(mpp)),
        slide_id=slide_id,
        encoder=encoder,
        source={
            "format": "stamp",
            "path": str(path),
            "attributes": {k: v for k, v in attrs.items() if k != "slidesnake"},
        },
    )
    write_feature_store(store, features=features, index=index, attributes=attributes)
    return FeatureStore(store)
