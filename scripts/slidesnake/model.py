"""Keras models for tiles: build from a configurable backbone, stream tiles from Zarr, train, predict."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from .tiling import open_image  # noqa: E402

log = logging.getLogger(__name__)

#: Backbone name -> (keras.applications constructor, input preprocessing: "tf" maps 0-255 to -1..1,
#: "caffe" is BGR minus the ImageNet mean, "raw" leaves 0-255 to the model's own layers).
APPLICATIONS = {
    "mobilenet_v2": ("MobileNetV2", "tf"),
    "efficientnet_b0": ("EfficientNetB0", "raw"),
    "resnet50": ("ResNet50", "caffe"),
    "inception_v3": ("InceptionV3", "tf"),
}
BACKBONES = ("small_cnn", *APPLICATIONS)
OPTIMIZERS = {
    "adam": lambda rate: keras.optimizers.Adam(rate),
    "adamw": lambda rate: keras.optimizers.AdamW(rate),
    "sgd": lambda rate: keras.optimizers.SGD(rate, momentum=0.9, nesterov=True),
}


@keras.saving.register_keras_serializable(package="slidesnake")
class CaffePreprocess(keras.layers.Layer):
    """RGB 0-255 to BGR minus the ImageNet channel means, as Keras' ResNet50 weights expect."""

    def call(self, inputs: tf.Tensor) -> tf.Tensor:  # noqa: D102
        return inputs[..., ::-1] - tf.constant([103.939, 116.779, 123.68], dtype=inputs.dtype)


def _preprocessing(kind: str) -> keras.layers.Layer:
    if kind == "caffe":
        return CaffePreprocess()
    if kind == "tf":
        return keras.layers.Rescaling(1 / 127.5, -1.0)
    if kind == "unit":
        return keras.layers.Rescaling(1 / 255.0)
    return keras.layers.Identity()


def _small_cnn(input_size: int) -> keras.Model:
    inputs = keras.Input((input_size, input_size, 3))
    x = inputs
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(96, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, x, name="small_cnn")


def build_backbone(
    name: str, input_size: int, weights: str | None, alpha: float = 1.0
) -> tuple[keras.Model, str]:
    """Build a feature extractor without its classification head.

    Parameters
    ----------
    name : str
        One of ``BACKBONES``.
    input_size : int
        Side of the square input in pixels.
    weights : str or None
        ``imagenet`` (Keras downloads and caches them under ``KERAS_HOME``), the
        path of a weights file saved from the same backbone
        (``backbone.save_weights``), or None for random initialisation.
    alpha : float
        Width multiplier of MobileNetV2 (ignored by the other backbones).

    Returns
    -------
    tuple of (keras.Model, str)
        The backbone and its input preprocessing (see ``APPLICATIONS``).
    """
    if name not in BACKBONES:
        raise ValueError(f"model backbone {name!r} is not one of {list(BACKBONES)}")
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise FileNotFoundError(f"model weights file not found: {weights}")
    if name == "small_cnn":
        if weights == "imagenet":
            raise ValueError("backbone 'small_cnn' has no imagenet weights; use a weights file or null")
        backbone, preprocessing = _small_cnn(input_size), "unit"
    else:
        constructor, preprocessing = APPLICATIONS[name]
        options = {"alpha": alpha} if name == "mobilenet_v2" else {}
        backbone = getattr(keras.applications, constructor)(
            include_top=False,
            weights="imagenet" if weights == "imagenet" else None,
            input_shape=(input_size, input_size, 3),
            **options,
        )
    if weights not in (None, "imagenet"):
        backbone.load_weights(weights)
    return backbone, preprocessing


def build_model(settings: dict, tile_size: int, classes: list[str]) -> keras.Model:
    """Build a classifier that takes uint8 RGB tiles (or images) of ``tile_size`` pixels.

    Resizing and input preprocessing are layers of the model, so a saved model
    needs no separate preprocessing. A pretrained backbone runs in inference
    mode (its batch-normalisation statistics stay as loaded, also when it is
    unfrozen for fine-tuning).

    Parameters
    ----------
    settings : dict
        The dataset's model settings: ``backbone``, ``input_size``, ``weights``,
        optionally ``alpha`` and ``dropout``.
    tile_size : int
        Side of the tiles as stored.
    classes : list of str
        Class names, in output order.

    Returns
    -------
    keras.Model
        Softmax outputs, one per class; its layer ``backbone`` is the feature extractor.
    """
    input_size = settings["input_size"]
    features, preprocessing = build_backbone(
        settings["backbone"], input_size, settings.get("weights"), settings.get("alpha", 1.0)
    )
    pretrained = settings.get("weights") is not None
    inputs = keras.Input((tile_size, tile_size, 3), name="tile")
    x = inputs
    if input_size != tile_size:
        x = keras.layers.Resizing(input_size, input_size, interpolation="area")(x)
    x = _preprocessing(preprocessing)(x)
    backbone = keras.Model(features.input, features.output, name="backbone")
    x = backbone(x, training=False) if pretrained else backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="features")(x)
    x = keras.layers.Dropout(settings.get("dropout", 0.2))(x)
    outputs = keras.layers.Dense(len(classes), activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"slidesnake_{settings['backbone']}")


def tile_dataset(
    stores: list[str],
    entries: pd.DataFrame,
    tile_size: int,
    batch_size: int,
    labels: np.ndarray | None = None,
    shuffle_seed: int | None = None,
    augment: dict | None = None,
) -> tf.data.Dataset:
    """Stream tiles from per-slide Zarr stores as a batched, prefetched ``tf.data`` pipeline.

    Parameters
    ----------
    stores : list of str
        Zarr store paths; ``entries['store']`` indexes into this list.
    entries : pandas.DataFrame
        One row per tile: ``store`` (int), ``y``, ``x`` (target pixels).
    tile_size : int
        Tile side in pixels.
    batch_size : int
        Tiles per batch.
    labels : numpy.ndarray, optional
        Integer class per entry; without it the dataset yields tiles only.
    shuffle_seed : int, optional
        Shuffle the entries with this seed (each epoch reshuffles, reproducibly).
    augment : dict, optional
        ``flips``, ``rotations`` (90-degree) and ``color_jitter`` (0-1 strength).

    Returns
    -------
    tf.data.Dataset
        Batches of float32 tiles (and labels).
    """
    images = [open_image(path) for path in stores]

    def read(store: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return images[int(store)][int(y) : int(y) + tile_size, int(x) : int(x) + tile_size]

    columns = tuple(entries[c].to_numpy(np.int64) for c in ("store", "y", "x"))
    return _pipeline(columns, read, tile_size, batch_size, labels, shuffle_seed, augment)


def image_dataset(
    paths: list[str],
    image_size: int,
    batch_size: int,
    labels: np.ndarray | None = None,
    shuffle_seed: int | None = None,
    augment: dict | None = None,
) -> tf.data.Dataset:
    """Decode image files on the fly (any format Pillow or tifffile reads), resized to ``image_size``.

    Parameters and return value as :func:`tile_dataset`, with ``paths`` the image files.
    """
    from .patches import load_image

    def read(path: np.ndarray) -> np.ndarray:
        return load_image(path.decode(), image_size)

    return _pipeline(
        (np.asarray(paths, dtype=str),), read, image_size, batch_size, labels, shuffle_seed, augment
    )


def _pipeline(
    columns: tuple[np.ndarray, ...],
    read: Callable[..., np.ndarray],
    size: int,
    batch_size: int,
    labels: np.ndarray | None,
    shuffle_seed: int | None,
    augment: dict | None,
) -> tf.data.Dataset:
    """Shuffle entries, read them in parallel (in order), augment, batch and prefetch."""

    def load(*entry: tf.Tensor) -> tf.Tensor:
        pixels = tf.numpy_function(read, list(entry), tf.uint8, stateful=False)
        pixels.set_shape((size, size, 3))
        return tf.cast(pixels, tf.float32)

    targets = np.full(len(columns[0]), -1, np.int32) if labels is None else labels.astype(np.int32)
    data = tf.data.Dataset.zip(
        tf.data.Dataset.from_tensor_slices(columns), tf.data.Dataset.from_tensor_slices(targets)
    )
    if shuffle_seed is not None:
        data = data.shuffle(len(targets), seed=shuffle_seed, reshuffle_each_iteration=True)
    if augment:
        randomness = tf.data.Dataset.random(seed=shuffle_seed or 0, rerandomize_each_iteration=True)
        change = _augmenter(augment)
        data = tf.data.Dataset.zip(data, randomness).map(
            lambda item, r: (change(load(*item[0]), r), item[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    else:
        data = data.map(
            lambda entry, target: (load(*entry), target),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    if labels is None:
        data = data.map(lambda pixels, _: pixels)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _augmenter(options: dict) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """Flips, 90-degree rotations and colour jitter, seeded per element from one random int64."""
    jitter = float(options.get("color_jitter", 0.0))
    flips = bool(options.get("flips", True))
    rotations = bool(options.get("rotations", True))

    def augment(pixels: tf.Tensor, randomness: tf.Tensor) -> tf.Tensor:
        seeds = [tf.stack([randomness, tf.constant(k, tf.int64)]) for k in range(4)]
        if flips:
            pixels = tf.image.stateless_random_flip_left_right(pixels, seeds[0])
            pixels = tf.image.stateless_random_flip_up_down(pixels, seeds[1])
        if rotations:
            pixels = tf.image.rot90(pixels, tf.random.stateless_uniform((), seeds[2], 0, 4, dtype=tf.int32))
        if jitter > 0:
            shift = tf.random.stateless_uniform((3,), seeds[3], -jitter, jitter) * 255.0
            pixels = tf.clip_by_value(pixels + shift, 0.0, 255.0)
        return pixels

    return augment


def set_determinism(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and ask TensorFlow for deterministic ops."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


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


def train_model(
    model: keras.Model,
    train: tf.data.Dataset,
    val: tf.data.Dataset | None,
    settings: dict,
    class_weight: dict[int, float] | None = None,
) -> pd.DataFrame:
    """Train in up to two phases, with early stopping on validation loss.

    With ``frozen_epochs`` > 0 the backbone is frozen for that many epochs
    (only the head learns), then its last ``unfreeze`` layers (``all`` by
    default) are fine-tuned at ``fine_tune_learning_rate`` until ``epochs``.
    Each phase keeps the weights of its best validation loss.

    Parameters
    ----------
    model : keras.Model
        From :func:`build_model`.
    train, val : tf.data.Dataset
        Batches of (pixels, class); ``val`` may be None (no early stopping).
    settings : dict
        ``epochs``, ``learning_rate``, ``optimizer`` (adam, adamw, sgd),
        ``patience``, ``frozen_epochs``, ``unfreeze``, ``fine_tune_learning_rate``.
    class_weight : dict, optional
        Loss weight per class index.

    Returns
    -------
    pandas.DataFrame
        One row per epoch: ``epoch``, ``phase`` (``frozen`` or ``trained``) and
        Keras' metrics (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``).
    """
    epochs = settings["epochs"]
    frozen = min(settings.get("frozen_epochs", 0), epochs)
    optimizer = OPTIMIZERS[settings.get("optimizer", "adam")]
    phases = []
    if frozen:
        phases.append(("frozen", 0, frozen, settings["learning_rate"], 0))
    if epochs > frozen:
        rate = settings.get("fine_tune_learning_rate") or settings["learning_rate"] / (10 if frozen else 1)
        phases.append(("trained", frozen, epochs, rate, settings.get("unfreeze", "all")))
    tables = []
    for phase, first, last, rate, trainable in phases:
        _set_backbone_trainable(model, trainable)
        model.compile(optimizer=optimizer(rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        callbacks = []
        if val is not None:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=settings.get("patience", 5), restore_best_weights=True
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
        table = pd.DataFrame(history.history)
        table.insert(0, "phase", phase)
        table.insert(0, "epoch", history.epoch)
        tables.append(table)
    history = pd.concat(tables, ignore_index=True)
    history["epoch"] += 1
    return history


def predict_probabilities(model: keras.Model, data: tf.data.Dataset) -> np.ndarray:
    """Run a model over a dataset of tiles through a compiled function.

    Returns
    -------
    numpy.ndarray
        (tile, class) probabilities.
    """
    infer = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)
    parts = [infer(batch).numpy() for batch in data]
    n_classes = model.output_shape[-1]
    return np.concatenate(parts) if parts else np.zeros((0, n_classes), np.float32)
