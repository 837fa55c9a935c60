"""Train, predict and embed: the model's work on input pipelines, seeded and deterministic."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from ..settings import ModelSettings  # noqa: E402
from .build import FEATURES, MEMBER  # noqa: E402
from .history import epoch_table  # noqa: E402

OPTIMIZERS = {
    "adam": lambda rate: keras.optimizers.Adam(rate),
    "adamw": lambda rate: keras.optimizers.AdamW(rate),
    "sgd": lambda rate: keras.optimizers.SGD(rate, momentum=0.9, nesterov=True),
}


def set_determinism(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and ask TensorFlow for deterministic ops."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def set_threads(threads: int) -> None:
    """Let TensorFlow use ``threads`` threads for its ops (config ``tf_threads``: results depend on it)."""
    tf.config.threading.set_inter_op_parallelism_threads(max(1, threads))
    tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))


def _set_backbone_trainable(model: keras.Model, trainable_layers: int | str) -> None:
    """Freeze the backbone, or unfreeze all of it (``all``) or its last ``trainable_layers`` layers."""
    backbone = model.get_layer("backbone")
    if trainable_layers == "all":
        backbone.trainable = True
        return
    backbone.trainable = int(trainable_layers) > 0
    count = int(trainable_layers)
    for k, layer in enumerate(backbone.layers):
        layer.trainable = k >= len(backbone.layers) - count


def _phases(settings: ModelSettings) -> list[tuple[str, int, int, float, int | str]]:
    """(phase, first epoch, last epoch, learning rate, trainable backbone layers) of each training phase."""
    epochs = settings.epochs
    frozen = min(settings.frozen_epochs, epochs)
    phases: list[tuple[str, int, int, float, int | str]] = []
    if frozen:
        phases.append(("frozen", 0, frozen, settings.learning_rate, 0))
    if epochs > frozen:
        rate = settings.fine_tune_learning_rate or settings.learning_rate / (10 if frozen else 1)
        phases.append(("trained", frozen, epochs, rate, settings.unfreeze))
    return phases


def train_model(
    model: keras.Model,
    train: tf.data.Dataset,
    val: tf.data.Dataset | None,
    *,
    settings: ModelSettings,
    class_weight: dict[int, float] | None,
) -> pd.DataFrame:
    """Train in up to two phases, with early stopping on validation loss.

    With ``frozen_epochs`` > 0 the backbone is frozen for that many epochs
    (only the head learns), then its last ``unfreeze`` layers are fine-tuned at
    ``fine_tune_learning_rate`` until ``epochs``. Each phase keeps the weights
    of its best validation loss.

    Parameters
    ----------
    model : keras.Model
        From :func:`slidesnake.model.build.build_model`.
    train, val : tf.data.Dataset
        Batches of (pixels, class); ``val`` may be None (no early stopping).
    settings : ModelSettings
        Epochs, rates, optimizer, patience, transfer-learning phases.
    class_weight : dict or None
        Loss weight per class index.

    Returns
    -------
    pandas.DataFrame
        One row per epoch: ``epoch``, ``phase`` (``frozen`` or ``trained``) and
        Keras' metrics (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``).
    """
    optimizer = OPTIMIZERS[settings.optimizer]
    tables = []
    for phase, first, last, rate, trainable in _phases(settings):
        _set_backbone_trainable(model, trainable)
        model.compile(optimizer=optimizer(rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        callbacks = []
        if val is not None:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=settings.patience, restore_best_weights=True
                )
            )
        history = model.fit(
            train,
            validation_data=val,
            initial_epoch=first,
            epochs=last,
            class_weight=class_weight,
            callbacks=callbacks,
            shuffle=False,  # the tf.data pipeline shuffles, seeded
            verbose=2,
        )
        tables.append(epoch_table(history.history, history.epoch, phase))
    history = pd.concat(tables, ignore_index=True)
    history["epoch"] += 1
    return history


def predict_probabilities(model: keras.Model, data: tf.data.Dataset) -> np.ndarray:
    """Run a model over a dataset of pixels through a compiled function.

    Returns
    -------
    numpy.ndarray
        (entry, output) values: class probabilities, or features for a feature model.
    """
    infer = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)
    parts = [infer(batch).numpy() for batch in data]
    width = model.output_shape[-1]
    return np.concatenate(parts) if parts else np.zeros((0, width), np.float32)


def feature_model(model: keras.Model) -> keras.Model:
    """The part of a slidesnake model up to its pooled features (the layer before the classifier head).

    For an ensemble (:func:`slidesnake.model.build.ensemble_model`): its members' features, concatenated.
    """
    members = [layer for layer in model.layers if layer.name.startswith(MEMBER)]
    if not members:
        return keras.Model(model.inputs, model.get_layer(FEATURES).output)
    pooled = [member(model.inputs[0])[0] for member in members]  # shared weights, a new call
    return keras.Model(model.inputs, keras.layers.Concatenate()(pooled) if len(pooled) > 1 else pooled[0])
