"""The MIL networks in Keras: gated attention (Ilse et al. 2018), the mean-pooling baseline, their training.

Both take a padded bag (``features``: bag, tile, feature) and its ``mask`` (bag, tile): the features
standardized with their training tiles' mean and variance (stored in the network, so it takes raw
features), a tile embedding (dense ``hidden``, ReLU, dropout), a pooling over the bag's real tiles, and
a linear classifier with a softmax. Gated attention scores each tile ``w . (tanh(V h) * sigmoid(U h))``
and pools with the softmax of the scores over the real tiles (padding gets exactly zero weight); mean
pooling gives every real tile the same weight. Each network has two outputs, ``probabilities`` and
``attention`` (the pooling weights).
"""

from __future__ import annotations

import logging
from typing import Literal

import keras
import numpy as np
import pandas as pd
from keras import layers, ops

from .bags import sampled_batch
from .settings import MILSettings

log = logging.getLogger(__name__)

Pooling = Literal["attention", "mean"]
#: Score of a padded tile before the softmax: its weight underflows to exactly 0 in float32.
MASKED_SCORE = -1e9


@keras.saving.register_keras_serializable(package="slidesnake")
class BagPooling(layers.Layer):
    """Pool a bag's tile embeddings: gated attention, or the mean over the real tiles.

    Called on ``[embeddings (bag, tile, hidden), mask (bag, tile)]``; returns ``[pooled (bag, hidden),
    weights (bag, tile)]``, the weights summing to 1 over each bag's real tiles and 0 on padding.
    """

    def __init__(self, pooling: Pooling = "attention", units: int = 256, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pooling = pooling
        self.units = units

    def build(self, input_shape) -> None:
        if self.pooling == "attention":
            hidden = input_shape[0][-1]
            self.tanh_branch = layers.Dense(self.units, activation="tanh", name="attention_v")
            self.gate_branch = layers.Dense(self.units, activation="sigmoid", name="attention_u")
            self.score = layers.Dense(1, name="attention_w")
            self.tanh_branch.build((None, None, hidden))
            self.gate_branch.build((None, None, hidden))
            self.score.build((None, None, self.units))
        self.built = True

    def call(self, inputs):
        embeddings, mask = inputs
        if self.pooling == "attention":
            scores = ops.squeeze(self.score(self.tanh_branch(embeddings) * self.gate_branch(embeddings)), -1)
            scores = ops.where(mask > 0, scores, MASKED_SCORE)
            weights = ops.softmax(scores, axis=-1) * mask
        else:
            weights = mask / ops.maximum(ops.sum(mask, axis=-1, keepdims=True), 1.0)
        pooled = ops.sum(embeddings * ops.expand_dims(weights, -1), axis=1)
        return pooled, weights

    def get_config(self) -> dict:
        return {**super().get_config(), "pooling": self.pooling, "units": self.units}


def tile_statistics(features: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each feature over the real tiles of padded bags (a constant feature: variance 1).

    Encoder features are often on very different scales (pooled ReLU activations, many near zero): without
    standardizing them a small MIL network barely moves from its initial output.
    """
    tiles = features[mask > 0].astype(np.float64)
    variance = tiles.var(axis=0)
    return tiles.mean(axis=0), np.where(variance > 1e-12, variance, 1.0)


def build_network(
    statistics: tuple[np.ndarray, np.ndarray], classes: int, settings: MILSettings, pooling: Pooling
) -> keras.Model:
    """A MIL network for `classes` classes on features standardized by `statistics` (mean, variance: see
    :func:`tile_statistics`); outputs: probabilities, attention."""
    mean, variance = statistics
    features = keras.Input((None, len(mean)), name="features")
    mask = keras.Input((None,), name="mask")
    standardized = layers.Normalization(mean=mean, variance=variance, name="standardized")(features)
    embedded = layers.Dense(settings.hidden, activation="relu", name="embedding")(standardized)
    embedded = layers.Dropout(settings.dropout, name="embedding_dropout")(embedded)
    pooled, weights = BagPooling(pooling, settings.attention, name="pooling")([embedded, mask])
    logits = layers.Dense(classes, name="classifier")(pooled)
    probabilities = layers.Softmax(name="probabilities")(logits)
    attention = layers.Identity(name="attention")(weights)
    return keras.Model(
        {"features": features, "mask": mask},
        {"probabilities": probabilities, "attention": attention},
        name=f"mil_{pooling}",
    )


def predict_bags(model: keras.Model, features: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (bag, class) and attention (bag, tile) of padded bags."""
    out = model({"features": features, "mask": mask}, training=False)
    return np.asarray(out["probabilities"], np.float64), np.asarray(out["attention"], np.float64)


def _log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))


def class_weights(labels: np.ndarray, classes: int) -> np.ndarray:
    """Balanced weight of each bag: ``n / (classes * count of its class)``."""
    counts = np.bincount(labels, minlength=classes).astype(float)
    return (len(labels) / (classes * np.maximum(counts, 1.0)))[labels]


def fit_network(
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    classes: int,
    settings: MILSettings,
    pooling: Pooling,
    seed: int,
) -> tuple[keras.Model, pd.DataFrame]:
    """Train one MIL network; early stopping on the validation bags' log loss (their full bags), never
    before ``min_epochs`` (attention often finds its tiles only after a plateau).

    Parameters
    ----------
    train, val : tuple of numpy.ndarray
        Padded features, mask and integer labels of the training and validation bags.
    classes : int
        Number of classes.
    settings : MILSettings
        Widths, dropout, sampling, epochs, patience, AdamW, batch size.
    pooling : {'attention', 'mean'}
        The network.
    seed : int
        Seeds Keras (weights, dropout, shuffling) and the tile sampling.

    Returns
    -------
    tuple
        The network with the weights of its best epoch, and its history (``epoch``, ``loss``,
        ``val_loss``, ``best``).
    """
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    features, mask, labels = train
    model = build_network(tile_statistics(features, mask), classes, settings, pooling)
    trainer = keras.Model(model.input, model.get_layer("probabilities").output)
    trainer.compile(
        optimizer=keras.optimizers.AdamW(settings.learning_rate, weight_decay=settings.weight_decay),
        loss="sparse_categorical_crossentropy",
    )
    weights = class_weights(labels, classes)
    best, best_loss, waited, rows = trainer.get_weights(), np.inf, 0, []
    for epoch in range(1, settings.epochs + 1):
        order = rng.permutation(len(labels))
        losses = []
        for start in range(0, len(order), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            batch_features, batch_mask = sampled_batch(features, mask, batch, settings.tiles_per_bag, rng)
            loss = trainer.train_on_batch(
                {"features": batch_features, "mask": batch_mask}, labels[batch], sample_weight=weights[batch]
            )
            losses.append(float(loss) * len(batch))
        val_loss = _log_loss(predict_bags(model, val[0], val[1])[0], val[2])
        improved = val_loss < best_loss - 1e-6
        rows.append({"epoch": epoch, "loss": sum(losses) / len(labels), "val_loss": val_loss})
        if improved:
            best, best_loss, waited = trainer.get_weights(), val_loss, 0
        else:
            waited += 1
            if waited >= settings.patience and epoch >= settings.min_epochs:
                break
    trainer.set_weights(best)
    history = pd.DataFrame(rows)
    history["best"] = history["val_loss"] == history["val_loss"].min()
    return model, history
