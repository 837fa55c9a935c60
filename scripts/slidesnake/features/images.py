"""An image feature store: the features of every image of a patch-folder dataset by one encoder.

The patch-folder counterpart of :mod:`slidesnake.features.store` (this module owns its format): one
Zarr v3 group ``results/features/<encoder>/<dataset>.zarr`` holding ``features``, float16 (image,
feature), every value finite; ``items``, the text (image, 1) array of each row's image id (the entries
table's ``item``); and the group attributes ``slidesnake``: ``dataset``, ``encoder``, ``image_size``,
``mpp`` (None when unknown), ``count``, ``dim``, ``format_version``, and the caller's (the encoder's
description with its file digests and licence, the code version). Written under a temporary name
and renamed when complete, as every store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from ..interrupts import interrupts_held
from ..io import atomic_path

#: The features array and the image ids.
FEATURES, ITEMS = "features", "items"
#: Layout version written.
FORMAT_VERSION = 1
#: Attributes the caller must give.
REQUIRED = ("dataset", "encoder", "image_size", "mpp")


def write_image_feature_store(
    path: str | Path, *, features: np.ndarray, items: Sequence[str], attributes: Mapping[str, Any]
) -> None:
    """Write a patch dataset's image features (the layout is in this module's docstring).

    Raises
    ------
    ValueError
        When the features are not one finite float16-sized row per item, or attributes are missing.
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or len(features) != len(items):
        msg = f"features of shape {features.shape} for {len(items)} images"
        raise ValueError(msg)
    if not (np.isfinite(features) & (np.abs(features) <= np.finfo(np.float16).max)).all():
        msg = "features are NaN, infinite or beyond float16's range"
        raise ValueError(msg)
    missing = [key for key in REQUIRED if key not in attributes]
    if missing:
        msg = f"the image feature store's attributes lack {', '.join(missing)}"
        raise ValueError(msg)
    count, dim = features.shape
    attrs = {**attributes, "count": count, "dim": dim, "format_version": FORMAT_VERSION}
    with atomic_path(path) as tmp, interrupts_held():
        group = zarr.open_group(tmp, mode="w", zarr_format=3)
        group.create_array(
            FEATURES,
            shape=(count, dim),
            chunks=(max(1, count), max(1, dim)),
            dtype="float16",
            compressors=ZstdCodec(level=3),
            dimension_names=("image", "feature"),
        )[:] = features.astype(np.float16)
        group.create_array(
            ITEMS, shape=(count, 1), chunks=(max(1, count), 1), dtype=str, dimension_names=("image", "column")
        )[:] = np.asarray(list(items), dtype=object).reshape(count, 1)
        group.attrs["slidesnake"] = attrs


class ImageFeatureStore:
    """An image feature store, opened read-only.

    Attributes
    ----------
    path : Path
        The store.
    attrs : dict
        Its ``slidesnake`` attributes.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._group = zarr.open_group(self.path, mode="r")
        attrs = self._group.attrs.get("slidesnake")
        if not isinstance(attrs, dict) or ITEMS not in self._group or "dataset" not in attrs:
            msg = f"{self.path} is not an image feature store (no '{ITEMS}' array or dataset attribute)"
            raise ValueError(msg)
        self.attrs: dict[str, Any] = dict(attrs)

    @cached_property
    def features(self) -> np.ndarray:
        """The features, (image, feature) float32."""
        return np.asarray(self._group[FEATURES][:], dtype=np.float32)

    @cached_property
    def items(self) -> list[str]:
        """The image id of each row."""
        return [str(v) for v in self._group[ITEMS][:, 0]]
