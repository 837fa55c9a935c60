"""What turns uint8 tiles into class probabilities, as saved by a training rule: the model file and the
``config.json`` beside it.

A network (``kind: cnn``, or an ensemble of them) takes the tiles themselves. A linear probe (``kind:
probe``, :mod:`slidesnake.model.probe`) takes its encoder's features: the encoder named in the model's
``config.json`` is loaded (its weights checked against their SHA-256) and run on the tiles first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..entries import is_tiles
from ..features.encoders import EncoderSpec
from ..features.loading import Encoder, load_encoder
from ..pixels import pixel_source
from ..store.batches import tile_batches
from ..store.tiles import TileStore
from .card import ModelCard

#: Tiles per batch of prediction and embedding.
PREDICT_BATCH = 64


@dataclass(frozen=True)
class TileClassifier:
    """A saved slidesnake model ready to run.

    Attributes
    ----------
    model : keras.Model
        Tiles (or, for a probe, its encoder's features) in, class probabilities out; its layer
        ``features`` is what t-SNE embeds.
    encoder : Encoder or None
        A probe's encoder; None for a network.
    """

    model: Any
    encoder: Encoder | None = None

    def inputs(self, tiles: np.ndarray) -> np.ndarray:
        """What :attr:`model` takes for a batch of (N, H, W, 3) tiles of 0-255 values."""
        if self.encoder is None:
            return tiles
        tiles = np.asarray(tiles)
        if tiles.dtype != np.uint8:  # an input pipeline's float32 pixels
            tiles = np.clip(np.rint(tiles), 0, 255).astype(np.uint8)
        return self.encoder.embed(tiles)


def probe_encoder(card: ModelCard) -> tuple[EncoderSpec, str | None] | None:
    """The encoder a model's card names (a probe's, or a pretrained classifier's file), and a ``dataset``
    encoder's model file."""
    recorded = card.encoder
    if not recorded:
        return None
    spec = EncoderSpec.from_config(recorded["name"], recorded["settings"])
    return spec, recorded.get("model_file")


def load_classifier(model_path: str, card: ModelCard, *, threads: int) -> TileClassifier:
    """Load a model and, for a probe, its encoder.

    Parameters
    ----------
    model_path : str
        The ``model.keras`` file.
    card : ModelCard
        Its card (``config.json``).
    threads : int
        CPU threads of the encoder.

    Returns
    -------
    TileClassifier
        The model, and the probe's encoder.
    """
    import keras

    model = keras.models.load_model(model_path)
    found = probe_encoder(card)
    if found is None:
        return TileClassifier(model)
    spec, model_path = found
    return TileClassifier(
        model, load_encoder(spec, base_dir=Path.cwd(), threads=threads, model_path=model_path)
    )


def probabilities(
    model_path: str,
    card: ModelCard,
    entries: pd.DataFrame,
    classes: Sequence[str],
    image_size: int | None,
    threads: int,
) -> pd.DataFrame:
    """``p_<class>`` columns for every entry, from a saved model (a probe: through its encoder first).

    Parameters
    ----------
    model_path : str
        The model file.
    card : ModelCard
        Its card (``config.json``).
    entries : pandas.DataFrame
        Tiles of stores, or images (:func:`slidesnake.entries.pixel_source`).
    classes : sequence of str
        The model's classes, in output order.
    image_size : int or None
        Side images are resized to (patch datasets); None for tiles.
    threads : int
        CPU threads of a probe's encoder.

    Returns
    -------
    pandas.DataFrame
        One ``p_<class>`` column per class (5 decimals), indexed as ``entries``.
    """
    if entries.empty:  # an excluded slide or one without tissue: nothing to predict
        return pd.DataFrame({f"p_{c}": pd.Series(dtype=float) for c in classes}, index=entries.index)
    from .data import pipeline
    from .fit import predict_probabilities

    classifier = load_classifier(model_path, card, threads=threads)
    if is_tiles(entries) and entries["source"].nunique() == 1:  # one slide: read it shard by shard
        found = store_probabilities(classifier, TileStore(entries["source"].iloc[0]), entries)
    else:
        data = pipeline(pixel_source(entries, image_size=image_size), batch_size=PREDICT_BATCH)
        found = predict_probabilities(classifier.model, (classifier.inputs(batch.numpy()) for batch in data))
    return pd.DataFrame({f"p_{c}": found[:, k].round(5) for k, c in enumerate(classes)}, index=entries.index)


def store_probabilities(classifier: TileClassifier, store: TileStore, entries: pd.DataFrame) -> np.ndarray:
    """The model's outputs for tiles of one store, read a shard at a time while the model runs.

    Batches hold :data:`PREDICT_BATCH` tiles (the last one fewer), as uint8 (the model casts them);
    the next shard is read in a second thread while the model works on the tiles of this one
    (:func:`slidesnake.store.batches.tile_batches`).

    Returns
    -------
    numpy.ndarray
        (entry, class) probabilities, in the entries' order.
    """
    import tensorflow as tf

    from .fit import predict_probabilities

    order = []  # the entries' positions, batch by batch

    def batches() -> Iterator[tf.Tensor]:
        for positions, tiles in tile_batches(store, entries, PREDICT_BATCH):
            order.append(positions)
            yield tf.constant(classifier.inputs(tiles))

    outputs = predict_probabilities(classifier.model, batches())
    found = np.empty_like(outputs)
    found[np.concatenate(order)] = outputs
    return found
