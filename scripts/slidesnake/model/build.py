"""Build classifiers of uint8 RGB tiles from a configurable backbone; stain normalization, resizing and
preprocessing inside."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ..errors import ModelError  # noqa: E402
from ..settings import Backbone, ModelSettings  # noqa: E402
from ..stain import StainTarget, normalize  # noqa: E402

#: Backbone name -> (keras.applications constructor, input preprocessing: "tf" maps 0-255 to -1..1,
#: "caffe" is BGR minus the ImageNet mean, "raw" leaves 0-255 to the model's own layers).
APPLICATIONS = {
    "mobilenet_v2": ("MobileNetV2", "tf"),
    "efficientnet_b0": ("EfficientNetB0", "raw"),
    "resnet50": ("ResNet50", "caffe"),
    "inception_v3": ("InceptionV3", "tf"),
}
BACKBONES: tuple[str, ...] = get_args(Backbone)
#: Name of the pooled-features layer of every slidesnake model (what t-SNE embeds).
FEATURES = "features"
#: Name of the class-probabilities layer of every slidesnake model.
PROBABILITIES = "probabilities"
#: Name prefix of the members of an ensemble (``fold_0``, ``fold_1``...).
MEMBER = "fold_"


@keras.saving.register_keras_serializable(package="slidesnake")
class CaffePreprocess(keras.layers.Layer):
    """RGB 0-255 to BGR minus the ImageNet channel means, as Keras' ResNet50 weights expect."""

    def call(self, inputs: tf.Tensor) -> tf.Tensor:  # noqa: D102
        return inputs[..., ::-1] - tf.constant([103.939, 116.779, 123.68], dtype=inputs.dtype)


@keras.saving.register_keras_serializable(package="slidesnake")
class StainNormalization(keras.layers.Layer):
    """Each tile's stain normalized to a fitted target (:func:`slidesnake.stain.normalize`), in the model.

    The first layer of a model whose dataset sets ``model: stain: normalization``: training and
    every prediction see the same normalization, and the saved model (its target in the layer's
    config) still takes raw 0-255 tiles. It runs NumPy (scikit-image) code, so the model is not
    compiled with XLA.

    Parameters
    ----------
    target : dict
        :meth:`slidesnake.stain.StainTarget.to_dict` of the target.
    """

    def __init__(self, target: dict, **kwargs) -> None:
        kwargs["trainable"] = False  # nothing to learn
        super().__init__(**kwargs)
        self.target = dict(target)
        self.supports_jit = False
        self._target = StainTarget.from_dict(self.target)

    def _normalize(self, batch: np.ndarray) -> np.ndarray:
        tiles = np.clip(np.rint(batch), 0, 255).astype(np.uint8)
        if not len(tiles):
            return batch.astype(np.float32)
        return (
            np.stack([normalize(tile, self._target) for tile in tiles])
            .astype(np.float32)
            .reshape(batch.shape)
        )

    def call(self, inputs: tf.Tensor) -> tf.Tensor:  # noqa: D102
        outputs = tf.numpy_function(
            self._normalize, [tf.cast(inputs, tf.float32)], tf.float32, stateful=False
        )
        outputs.set_shape(inputs.shape)
        return outputs

    def compute_output_spec(self, inputs: keras.KerasTensor) -> keras.KerasTensor:  # noqa: D102
        return keras.KerasTensor(inputs.shape, dtype="float32")

    def get_config(self) -> dict:  # noqa: D102
        return {**super().get_config(), "target": self.target}


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
    name: Backbone, *, input_size: int, weights: str | None, alpha: float
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
        msg = f"config 'model: backbone' = {name!r} is not one of {list(BACKBONES)}"
        raise ModelError(msg)
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        msg = f"config 'model: weights': weights file not found: {weights}"
        raise ModelError(msg)
    if name == "small_cnn":
        if weights == "imagenet":
            msg = "config 'model: weights': backbone 'small_cnn' has no imagenet weights; use a file or null"
            raise ModelError(msg)
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


def build_model(
    settings: ModelSettings, *, tile_size: int, classes: Sequence[str], stain: StainTarget | None = None
) -> keras.Model:
    """Build a classifier that takes uint8 RGB tiles (or images) of ``tile_size`` pixels.

    Stain normalization, resizing and input preprocessing are layers of the model, so a saved model
    needs no separate preprocessing. A pretrained backbone runs in inference
    mode (its batch-normalisation statistics stay as loaded, also when it is
    unfrozen for fine-tuning).

    Parameters
    ----------
    settings : ModelSettings
        The dataset's model settings (``backbone``, ``input_size``, ``weights``,
        ``alpha``, ``dropout`` are used here).
    tile_size : int
        Side of the tiles as stored.
    classes : sequence of str
        Class names, in output order.
    stain : StainTarget, optional
        Normalize each tile to this target first (layer ``stain``, :class:`StainNormalization`).

    Returns
    -------
    keras.Model
        Softmax outputs, one per class; its layer ``backbone`` is the feature extractor.
    """
    input_size = settings.input_size
    features, preprocessing = build_backbone(
        settings.backbone, input_size=input_size, weights=settings.weights, alpha=settings.alpha
    )
    pretrained = settings.weights is not None
    inputs = keras.Input((tile_size, tile_size, 3), name="tile")
    x = inputs
    if stain is not None:
        x = StainNormalization(stain.to_dict(), name="stain")(x)
    if input_size != tile_size:
        x = keras.layers.Resizing(input_size, input_size, interpolation="area")(x)
    x = _preprocessing(preprocessing)(x)
    backbone = keras.Model(features.input, features.output, name="backbone")
    x = backbone(x, training=False) if pretrained else backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name=FEATURES)(x)
    x = keras.layers.Dropout(settings.dropout)(x)
    outputs = keras.layers.Dense(len(classes), activation="softmax", name=PROBABILITIES)(x)
    return keras.Model(inputs, outputs, name=f"slidesnake_{settings.backbone}")


def ensemble_model(members: Sequence[keras.Model], *, name: str) -> keras.Model:
    """One model averaging the class probabilities of ``members`` (e.g. the models of k folds).

    Parameters
    ----------
    members : sequence of keras.Model
        Models from :func:`build_model` taking the same input (same tile size and classes).
    name : str
        The ensemble's name.

    Returns
    -------
    keras.Model
        Same input and output as each member: the mean of their probabilities (layer
        ``probabilities``); member ``k`` is its layer ``fold_<k>``, whose first output is the
        member's pooled features (see :func:`slidesnake.model.fit.feature_model`).
    """
    shape = tuple(members[0].inputs[0].shape[1:])
    if any(
        tuple(m.inputs[0].shape[1:]) != shape or m.output_shape != members[0].output_shape for m in members
    ):
        msg = f"ensemble {name!r}: the models take different inputs or give different outputs"
        raise ModelError(msg)
    inputs = keras.Input(shape, name="tiles", dtype=members[0].inputs[0].dtype)
    probabilities = []
    for k, member in enumerate(members):
        part = keras.Model(
            member.inputs, [member.get_layer(FEATURES).output, member.output], name=f"{MEMBER}{k}"
        )
        probabilities.append(part(inputs)[1])
    return keras.Model(inputs, keras.layers.Average(name=PROBABILITIES)(probabilities), name=name)


def start_from(model: keras.Model, init: keras.Model, *, source: str) -> int:
    """Copy the weights of ``init`` into ``model``: the same architecture's layers, paired in order.

    The layers holding weights (inside nested models such as the ``backbone`` too) are paired in their
    order in each model; each pair of the same layer type and weight shapes is copied (a head with
    another number of classes is not). This is how a model starts from another dataset's trained model
    (config ``model: init``) before it is fine-tuned.

    Parameters
    ----------
    model : keras.Model
        The freshly built model.
    init : keras.Model
        The trained model to start from.
    source : str
        Where ``init`` comes from, for messages.

    Returns
    -------
    int
        The number of layers copied.

    Raises
    ------
    ModelError
        When the two are not the same architecture (another backbone or input size, or an ensemble).
    """
    ours, given = _weighted_layers(model), _weighted_layers(init)
    if len(ours) != len(given) or not ours:
        msg = (
            f"model: init: {source} is not this model's architecture ({len(given)} layers with weights, "
            f"this model has {len(ours)}): another backbone, or an ensemble of fold models (deploy: refit "
            "gives one model)"
        )
        raise ModelError(msg)
    copied = 0
    for layer, other in zip(ours, given, strict=True):
        values = other.get_weights()
        if type(layer) is type(other) and [v.shape for v in values] == [
            tuple(w.shape) for w in layer.weights
        ]:
            layer.set_weights(values)
            copied += 1
    return copied


def _weighted_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer holding weights, in order, inside nested models too."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += _weighted_layers(layer)
        elif layer.weights:
            found.append(layer)
    return found


def output_head(count: int, *, softmax: bool, name: str) -> keras.Model:
    """What follows a pretrained classifier's outputs: ``count`` values in, layer ``features`` (identity),
    then ``probabilities``: a softmax (its outputs are logits) or the identity (they are probabilities).
    """
    inputs = keras.Input((count,), name="classifier_outputs")
    x = keras.layers.Identity(name=FEATURES)(inputs)
    activation = keras.layers.Softmax if softmax else keras.layers.Identity
    return keras.Model(inputs, activation(name=PROBABILITIES)(x), name=name)
