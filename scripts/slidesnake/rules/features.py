"""Rules of ``workflow/rules/features.smk``: tile features of a slide, or of a patch dataset's images, by one
encoder."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..features.encoders import EncoderSpec
from ..features.images import write_image_feature_store
from ..features.loading import load_encoder
from ..features.store import store_attributes, write_feature_store
from ..store.batches import tile_batches
from ..store.tiles import TileStore

log = logging.getLogger(__name__)

#: Tiles read and embedded at a time.
FEATURE_BATCH = 64
#: The tile index columns a feature store keeps (target and level-0 pixel corners).
FEATURE_INDEX = ("row", "col", "y", "x", "x0", "y0")


def features(
    *,
    store: str,
    encoder_name: str,
    encoder: Mapping[str, Any],
    model_path: str | None,
    code: str,
    out_store: str,
    threads: int,
) -> None:
    """Rule ``features``: every stored tile of a slide through one encoder, into its feature store.

    Parameters
    ----------
    store : str
        The slide's tile store.
    encoder_name, encoder : str, mapping
        The encoder's name and its validated config entry (``encoders: <name>``).
    model_path : str or None
        Source ``dataset``: the trained model of that dataset; otherwise None.
    code : str
        The rule's code version, recorded in the store.
    out_store : str
        The feature store to write (``results/features/<encoder>/<slide>.zarr``).
    threads : int
        CPU threads of the encoder's forward pass (config ``tf_threads``).
    """
    spec = EncoderSpec.from_config(encoder_name, encoder, where=f"encoders: {encoder_name}")
    tiles = TileStore(store)
    index = tiles.index
    loaded = load_encoder(spec, base_dir=Path.cwd(), threads=threads, model_path=model_path)
    found = np.zeros((len(index), loaded.dim), np.float32)
    if len(index):
        for positions, batch in tile_batches(tiles, index[["y", "x"]], FEATURE_BATCH):
            found[positions] = loaded.embed(batch)
    else:
        log.warning(
            "%s: %s: no tiles (%s): an empty feature store", tiles.slide_id, encoder_name, tiles.reason
        )
    attributes = store_attributes(
        tiles,
        encoder=encoder_name,
        encoder_attributes=loaded.attributes(),
        slide_sha256=tiles.attrs.get("sha256", ""),
        stain="none",
        code=code,
    )
    write_feature_store(out_store, features=found, index=index[list(FEATURE_INDEX)], attributes=attributes)
    log.info("%s: %d tiles -> %d features each by %s", tiles.slide_id, len(index), loaded.dim, encoder_name)


def features_patches(
    *,
    entries_tsv: str,
    dataset: str,
    image_size: int,
    mpp: float | None,
    encoder_name: str,
    encoder: Mapping[str, Any],
    model_path: str | None,
    code: str,
    out_store: str,
    threads: int,
) -> None:
    """Rule ``features_patches``: every image of a patch-folder dataset through one encoder.

    Images are read as its model reads them (resized to ``image_size``), then as the encoder takes them;
    the store is ``results/features/<encoder>/<dataset>.zarr`` (:mod:`slidesnake.features.images`).
    """
    from ..entries import ENTRIES_TABLE
    from ..pixels import pixel_source

    spec = EncoderSpec.from_config(encoder_name, encoder, where=f"encoders: {encoder_name}")
    entries = ENTRIES_TABLE.read(entries_tsv)
    source = pixel_source(entries, image_size=image_size)
    loaded = load_encoder(spec, base_dir=Path.cwd(), threads=threads, model_path=model_path)
    found = np.zeros((len(entries), loaded.dim), np.float32)
    for start in range(0, len(entries), FEATURE_BATCH):
        stop = min(len(entries), start + FEATURE_BATCH)
        batch = np.stack([source.read(*(column[k] for column in source.columns)) for k in range(start, stop)])
        found[start:stop] = loaded.embed(batch)
    attributes = {
        "dataset": dataset,
        "encoder": encoder_name,
        "image_size": image_size,
        "mpp": mpp,
        "encoder_attributes": loaded.attributes(),
        "code": code,
    }
    write_image_feature_store(
        out_store, features=found, items=entries["item"].astype(str), attributes=attributes
    )
    log.info("%s: %d images -> %d features each by %s", dataset, len(entries), loaded.dim, encoder_name)
