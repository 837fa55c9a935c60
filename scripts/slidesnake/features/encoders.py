"""Tile encoders from anywhere, offline and checksummed (config ``encoders: <name>``).

An encoder turns uint8 RGB tiles into one float32 feature vector per tile. Each named entry of the
config section ``encoders`` is an :class:`EncoderSpec` (this module);
:func:`slidesnake.features.checks.check_encoder` says whether it fits a study's tiles, and
:func:`slidesnake.features.loading.load_encoder` loads it. The sources:

``keras_application``
    A ``keras.applications`` backbone (``architecture``, one of :data:`ARCHITECTURES`) without its
    classifier, globally average-pooled (``include_top=False, pooling="avg"``). ``weights`` is required:
    a local weights file (``.h5``, ``.weights.h5`` or ``.keras``, loaded with ``load_weights`` into the
    architecture built with ``weights=None``), ``imagenet`` (Keras downloads them once into
    ``KERAS_HOME``: the only case that may reach the network), or ``random`` (random initialisation,
    for tests and benchmarks; features differ from run to run).
``keras_file``
    A saved Keras model (``file``: ``.keras``, or a legacy ``.h5`` model), cut at the layer ``layer``
    (null: the model's output), loaded with ``keras.models.load_model(file, compile=False)``.
``onnx``
    An ONNX model (``file``) run by onnxruntime, CUDA first where available. ``layout`` declares its
    input: ``nhwc`` (N, H, W, 3) or ``nchw`` (N, 3, H, W); the first output is the features. A model
    over 2 GB keeps its weights in an external file beside the graph: name it in ``data`` (it is
    checksummed like ``file``).
``dataset``
    The trained model of the study dataset ``dataset``, cut at its pooled-features layer ``features``
    (:data:`slidesnake.model.build.FEATURES`; of an ensemble, its members' features concatenated). The
    workflow makes that model, so the caller passes its path (``load_encoder(..., model_path=...)``) and
    its digest is computed and recorded rather than checked.

Every local file an encoder uses needs its SHA-256 digest in ``sha256`` (the path as written in ``file``
or ``weights`` -> hex digest): :func:`~.checks.check_encoder` reports a mismatch,
:func:`~.loading.load_encoder` refuses it.
Relative paths are relative to the caller's ``base_dir`` (the study folder).

``input_size`` (pixels, square) and ``mpp`` (microns per pixel) are what the encoder was trained on:
its field of view is ``input_size * mpp`` microns. Tiles of another side are resized to ``input_size``
(area averaging when shrinking, bilinear when enlarging); :func:`~.checks.check_encoder` accepts that only
when the tiles cover the same field of view (within :data:`~.checks.FOV_TOLERANCE`).

``normalization`` is the arithmetic on the float32 pixels after resizing, per RGB channel:

- ``imagenet``: ``x = (rgb / 255 - mean) / std`` with :data:`IMAGENET_MEAN` and :data:`IMAGENET_STD`;
- ``custom``: the same with the config's ``mean`` and ``std`` (3 floats each, on 0-1 scaled RGB);
- ``application``: the Keras application's own ``preprocess_input`` on 0-255 RGB (keras_application only);
- ``none``: 0-255 RGB as it is, for models that carry their own preprocessing (the only choice of the
  ``dataset`` source: slidesnake models take raw tiles).

``licence`` (an SPDX-like name such as ``Apache-2.0``, ``MIT``, ``CC-BY-NC-ND-4.0``, or ``unknown``) and
``gated`` (the weights are behind an access agreement) are recorded; under ``licence_policy:
commercial`` :func:`~.checks.check_encoder` refuses non-commercial and unknown licences
(:func:`~.checks.licence_kind`).

TensorFlow/Keras and onnxruntime are imported only when an encoder is loaded or an ONNX file is
checked, so specs can be read and checked in an environment without them.
"""

from __future__ import annotations

import math
import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self, get_args

import numpy as np

from ..errors import StudyError

Source = Literal["keras_application", "keras_file", "onnx", "dataset"]
Normalization = Literal["imagenet", "application", "none", "custom"]
Layout = Literal["nhwc", "nchw"]
LicencePolicy = Literal["any", "commercial"]

#: ``architecture`` -> (``keras.applications`` class, module of its ``preprocess_input``).
ARCHITECTURES: Mapping[str, tuple[str, str]] = types.MappingProxyType(
    {
        "densenet121": ("DenseNet121", "densenet"),
        "resnet50": ("ResNet50", "resnet50"),
        "mobilenet_v2": ("MobileNetV2", "mobilenet_v2"),
        "efficientnet_b0": ("EfficientNetB0", "efficientnet"),
        "inception_v3": ("InceptionV3", "inception_v3"),
    }
)
#: ImageNet's per-channel mean and standard deviation of 0-1 scaled RGB (``normalization: imagenet``).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The pooled-features layer of every slidesnake model (equal to ``slidesnake.model.build.FEATURES``,
#: kept here so that specs can be read without TensorFlow).
DATASET_LAYER = "features"

_SOURCES: tuple[str, ...] = get_args(Source)
_NORMALIZATIONS: tuple[str, ...] = get_args(Normalization)
_LAYOUTS: tuple[str, ...] = get_args(Layout)
_COMMON_KEYS = ("source", "input_size", "mpp", "normalization", "mean", "std", "licence", "gated", "sha256")
#: source -> (its own keys, the required ones among them)
_SOURCE_KEYS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "keras_application": (("architecture", "weights"), ("architecture", "weights")),
    "keras_file": (("file", "layer"), ("file",)),
    "onnx": (("file", "layout", "data"), ("file", "layout")),
    "dataset": (("dataset", "layer"), ("dataset",)),
}
_FILE_SUFFIXES = {"keras_file": (".keras", ".h5"), "onnx": (".onnx",), "keras_application": (".h5", ".keras")}
_HEX = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True, kw_only=True)
class EncoderSpec:
    """One tile encoder of the config section ``encoders`` (see the module docstring for the keys).

    Attributes
    ----------
    name : str
        The entry's name (``encoders: <name>``).
    source : {'keras_application', 'keras_file', 'onnx', 'dataset'}
        Where the model comes from.
    architecture : str or None
        keras_application: a key of :data:`ARCHITECTURES`.
    weights : str or None
        keras_application: a local weights file, ``imagenet`` or ``random``.
    file : str or None
        keras_file: the saved model; onnx: the ``.onnx`` file.
    data : str or None
        onnx: its external weights file (models over 2 GB keep their weights beside the graph), which
        must lie where the ``.onnx`` file names it (its folder); None: the weights are in ``file``.
    layer : str or None
        keras_file: the feature layer (None: the model's output); dataset: always ``features``.
    dataset : str or None
        dataset: the study dataset whose trained model is the encoder.
    input_size : int
        Side of the square input in pixels.
    mpp : float
        Microns per pixel the encoder expects.
    normalization : {'imagenet', 'application', 'none', 'custom'}
        The input arithmetic (module docstring).
    mean, std : tuple of 3 floats or None
        ``custom`` only: per-channel mean and standard deviation of 0-1 scaled RGB.
    layout : {'nhwc', 'nchw'}
        The ONNX input layout (always ``nhwc`` for Keras sources).
    sha256 : Mapping
        Local file (as written in ``file`` or ``weights``) -> SHA-256 hex digest (lower case).
    licence : str
        The weights' licence, e.g. ``Apache-2.0``, ``CC-BY-NC-ND-4.0`` or ``unknown``.
    gated : bool
        Whether the weights are behind an access agreement.
    """

    name: str
    source: Source
    architecture: str | None
    weights: str | None
    file: str | None
    data: str | None
    layer: str | None
    dataset: str | None
    input_size: int
    mpp: float
    normalization: Normalization
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None
    layout: Layout
    sha256: Mapping[str, str]
    licence: str
    gated: bool

    @classmethod
    def from_config(cls, name: str, section: Mapping[str, Any], *, where: str = "encoders") -> Self:
        """Validate one entry of the config section ``encoders``.

        Parameters
        ----------
        name : str
            The entry's name.
        section : Mapping
            Its settings (see the module docstring; keys of other sources are refused).
        where : str
            Key path of the section, for messages.

        Returns
        -------
        EncoderSpec
            The frozen spec.

        Raises
        ------
        StudyError
            One line naming the key, e.g. ``config 'encoders: uni: sha256': ...``, at the first problem.
        """

        def fail(key: str | None, problem: str) -> StudyError:
            path = f"{where}: {name}" + (f": {key}" if key else "")
            return StudyError(f"config '{path}': {problem}")

        if not isinstance(section, Mapping):
            raise fail(None, f"must be a mapping of settings, not {type(section).__name__}")
        source = section.get("source")
        if source not in _SOURCES:
            raise fail("source", f"{source!r} is not one of {list(_SOURCES)}")
        own, required = _SOURCE_KEYS[source]
        for key in section:
            if key in _COMMON_KEYS or key in own:
                continue
            owners = [s for s, (keys, _) in _SOURCE_KEYS.items() if key in keys]
            if owners:
                raise fail(key, f"is a setting of source {' or '.join(owners)}, not of {source}")
            raise fail(key, f"unknown key; the keys of source {source} are {[*_COMMON_KEYS, *own]}")
        for key in ("input_size", "mpp", "normalization", "licence", "gated", *required):
            if section.get(key) is None:
                hint = ": a weights file, 'imagenet' or 'random'" if key == "weights" else ""
                raise fail(key, f"missing (required for source {source}{hint})")

        input_size = section["input_size"]
        if not _is_int(input_size) or input_size < 1:
            raise fail("input_size", f"{input_size!r} is not a positive whole number of pixels")
        mpp = section["mpp"]
        if not _is_number(mpp) or mpp <= 0:
            raise fail("mpp", f"{mpp!r} is not a positive number of microns per pixel")

        normalization = section["normalization"]
        if normalization not in _NORMALIZATIONS:
            raise fail("normalization", f"{normalization!r} is not one of {list(_NORMALIZATIONS)}")
        if normalization == "application" and source != "keras_application":
            raise fail("normalization", "'application' is the preprocessing of a keras_application only")
        if source == "dataset" and normalization != "none":
            raise fail("normalization", "a dataset's model preprocesses its tiles itself: use 'none'")
        mean_std = {}
        for key in ("mean", "std"):
            value = section.get(key)
            if normalization != "custom":
                if value is not None:
                    raise fail(key, f"only with normalization 'custom' (normalization is {normalization!r})")
                mean_std[key] = None
                continue
            if value is None:
                raise fail(key, "missing (required for normalization 'custom': 3 floats on 0-1 scaled RGB)")
            if (
                isinstance(value, str | bytes)
                or not hasattr(value, "__len__")
                or len(value) != 3
                or not all(_is_number(v) for v in value)
            ):
                raise fail(key, f"{value!r} is not 3 numbers (R, G, B on 0-1 scaled RGB)")
            if key == "std" and any(v <= 0 for v in value):
                raise fail(key, f"{list(value)} has a value <= 0")
            mean_std[key] = tuple(float(v) for v in value)

        licence = section["licence"]
        if not isinstance(licence, str) or not licence.strip():
            raise fail("licence", f"{licence!r} is not a licence name (e.g. 'Apache-2.0' or 'unknown')")
        gated = section["gated"]
        if not isinstance(gated, bool):
            raise fail("gated", f"{gated!r} is not true or false")

        layout = section.get("layout", "nhwc") if source == "onnx" else "nhwc"
        if layout not in _LAYOUTS:
            raise fail("layout", f"{layout!r} is not one of {list(_LAYOUTS)}")

        architecture = section.get("architecture")
        if source == "keras_application" and architecture not in ARCHITECTURES:
            raise fail("architecture", f"{architecture!r} is not one of {list(ARCHITECTURES)}")
        weights = section.get("weights")
        if source == "keras_application" and weights not in ("imagenet", "random"):
            if not isinstance(weights, str) or not weights.endswith(_FILE_SUFFIXES[source]):
                raise fail(
                    "weights",
                    f"{weights!r} is not 'imagenet', 'random' or a weights file "
                    f"({', '.join(_FILE_SUFFIXES[source])})",
                )
        file = section.get("file")
        if source in ("keras_file", "onnx") and (
            not isinstance(file, str) or not file.endswith(_FILE_SUFFIXES[source])
        ):
            raise fail("file", f"{file!r} is not a {' or '.join(_FILE_SUFFIXES[source])} file")
        layer = section.get("layer")
        if layer is not None and (not isinstance(layer, str) or not layer):
            raise fail("layer", f"{layer!r} is not a layer name")
        dataset = section.get("dataset")
        if source == "dataset":
            if layer not in (None, DATASET_LAYER):
                raise fail("layer", f"a dataset's model is always cut at its layer {DATASET_LAYER!r}")
            layer = DATASET_LAYER
            if not isinstance(dataset, str) or not dataset:
                raise fail("dataset", f"{dataset!r} is not a dataset name")

        data = section.get("data") if source == "onnx" else None
        if data is not None and (not isinstance(data, str) or not data):
            raise fail("data", f"{data!r} is not the path of the model's external weights file")
        local = [file] if source in ("keras_file", "onnx") else []
        if data is not None:
            local.append(data)
        if source == "keras_application" and weights not in ("imagenet", "random"):
            local.append(weights)
        digests = section.get("sha256") or {}
        if not isinstance(digests, Mapping):
            raise fail("sha256", "must map each local file (as written in file/weights) to its hex digest")
        sha256 = {}
        for key, digest in digests.items():
            matches = [path for path in local if os.path.normpath(path) == os.path.normpath(str(key))]
            if not matches:
                raise fail(f"sha256: {key}", f"names no file of this encoder (its local files: {local})")
            if not isinstance(digest, str) or not _HEX.fullmatch(digest):
                raise fail(f"sha256: {key}", f"{digest!r} is not a SHA-256 hex digest (64 hex digits)")
            sha256[matches[0]] = digest.lower()
        for path in local:
            if path not in sha256:
                raise fail("sha256", f"no digest for {path!r}: add '{path}: <hex>' (from `sha256sum {path}`)")

        return cls(
            name=name,
            source=source,
            architecture=architecture if source == "keras_application" else None,
            weights=weights if source == "keras_application" else None,
            file=file if source in ("keras_file", "onnx") else None,
            data=data,
            layer=layer,
            dataset=dataset if source == "dataset" else None,
            input_size=int(input_size),
            mpp=float(mpp),
            normalization=normalization,
            mean=mean_std["mean"],
            std=mean_std["std"],
            layout=layout,
            sha256=types.MappingProxyType(sha256),
            licence=licence.strip(),
            gated=gated,
        )

    @property
    def field_of_view_um(self) -> float:
        """Side of the encoder's field of view in microns (``input_size * mpp``)."""
        return self.input_size * self.mpp

    def local_files(self) -> dict[str, str]:
        """The local files named in the config: key (``file`` or ``weights``) -> path as written."""
        if self.file is not None:
            return {"file": self.file, **({"data": self.data} if self.data else {})}
        if self.weights not in (None, "imagenet", "random"):
            return {"weights": self.weights}
        return {}

    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """The ``(mean, std)`` of ``x = (rgb / 255 - mean) / std``, or None (``application``, ``none``)."""
        if self.normalization == "imagenet":
            return IMAGENET_MEAN, IMAGENET_STD
        if self.normalization == "custom":
            return self.mean, self.std
        return None


def encoders_from_config(
    section: Mapping[str, Any] | None, *, where: str = "encoders"
) -> dict[str, EncoderSpec]:
    """Every entry of the config section ``encoders`` (None or empty: none).

    Parameters
    ----------
    section : Mapping or None
        Encoder name -> settings.
    where : str
        Key path of the section, for messages.

    Returns
    -------
    dict
        Name -> :class:`EncoderSpec`, in config order.

    Raises
    ------
    StudyError
        At the first entry that is not valid (see :meth:`EncoderSpec.from_config`).
    """
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        msg = f"config '{where}': must map encoder names to their settings, not {type(section).__name__}"
        raise StudyError(msg)
    return {
        str(name): EncoderSpec.from_config(str(name), entry, where=where) for name, entry in section.items()
    }


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float | np.floating) and math.isfinite(value))
