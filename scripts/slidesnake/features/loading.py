"""Load an encoder (Keras or ONNX) and embed tiles with it: :func:`load_encoder` and :class:`Encoder`.

See :mod:`slidesnake.features.encoders` for the config, the input arithmetic and the resizing.
TensorFlow/Keras and onnxruntime are imported when an encoder is loaded, not before.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .checks import file_digest, one_line, onnx_input_problems, onnx_session, resolve, shape_text
from .encoders import ARCHITECTURES, EncoderSpec

#: Tiles per forward pass in :meth:`Encoder.embed`.
BATCH = 32


class Encoder:
    """A loaded encoder (made by :func:`load_encoder`): uint8 tiles in, float32 features out.

    Attributes
    ----------
    spec : EncoderSpec
        What it was loaded from.
    dim : int
        Length of each tile's feature vector.
    """

    def __init__(
        self,
        spec: EncoderSpec,
        *,
        dim: int,
        forward: Callable[[np.ndarray], np.ndarray],
        files: Mapping[str, tuple[Path, str]],
        runtime: str,
    ) -> None:
        self.spec = spec
        self.dim = int(dim)
        self._forward = forward
        self._files = dict(files)
        self._runtime = runtime
        self._preprocess = _preprocessing(spec)

    def embed(self, tiles: np.ndarray) -> np.ndarray:
        """Features of tiles, resized to ``input_size`` first where their side differs.

        Parameters
        ----------
        tiles : numpy.ndarray
            uint8 (N, H, W, 3) RGB tiles, H = W.

        Returns
        -------
        numpy.ndarray
            float32 (N, dim).

        Raises
        ------
        ModelError
            When the tiles are not uint8 (N, H, W, 3) squares.
        """
        tiles = np.asarray(tiles)
        if (
            tiles.dtype != np.uint8
            or tiles.ndim != 4
            or tiles.shape[3] != 3
            or tiles.shape[1] != tiles.shape[2]
        ):
            msg = (
                f"encoder {self.spec.name!r}: embed takes uint8 (N, H, W, 3) square tiles, "
                f"not {tiles.dtype} {tiles.shape}"
            )
            raise ModelError(msg)
        features = np.empty((len(tiles), self.dim), dtype=np.float32)
        for start in range(0, len(tiles), BATCH):
            batch = _resize(tiles[start : start + BATCH], self.spec.input_size)
            out = np.asarray(self._forward(self._preprocess(batch)))
            out = out.reshape(len(out), -1)
            if out.shape != (len(batch), self.dim):
                msg = (
                    f"encoder {self.spec.name!r}: the model gave {out.shape}, "
                    f"expected ({len(batch)}, {self.dim})"
                )
                raise ModelError(msg)
            features[start : start + len(batch)] = out
        return features

    def attributes(self) -> dict[str, Any]:
        """What to record beside features (feature store attributes, provenance).

        Values are strings, numbers, booleans and lists of them (an absent value is ``""`` or ``[]``), so
        they fit HDF5/Zarr attributes and JSON alike.

        Returns
        -------
        dict
            ``name``, ``source``, ``architecture``, ``weights``, ``layer``, ``dataset``, ``files`` (file
            names) and ``sha256`` (their digests, same order), ``licence``, ``gated``, ``input_size``,
            ``mpp``, ``field_of_view_um``, ``normalization``, ``mean`` and ``std`` (of ``(rgb / 255 - mean)
            / std``; empty for ``application`` and ``none``), ``layout``, ``dim`` and ``runtime``.
        """
        spec = self.spec
        mean_std = spec.mean_std()
        return {
            "name": spec.name,
            "source": spec.source,
            "architecture": spec.architecture or "",
            "weights": spec.weights or "",
            "layer": spec.layer or "",
            "dataset": spec.dataset or "",
            "files": [path.name for path, _ in self._files.values()],
            "sha256": [digest for _, digest in self._files.values()],
            "licence": spec.licence,
            "gated": spec.gated,
            "input_size": spec.input_size,
            "mpp": spec.mpp,
            "field_of_view_um": spec.field_of_view_um,
            "normalization": spec.normalization,
            "mean": list(mean_std[0]) if mean_std else [],
            "std": list(mean_std[1]) if mean_std else [],
            "layout": spec.layout,
            "dim": self.dim,
            "runtime": self._runtime,
        }


def load_encoder(
    spec: EncoderSpec, *, base_dir: Path, threads: int, model_path: str | Path | None = None
) -> Encoder:
    """Load an encoder, its local files checked against their SHA-256 first.

    Parameters
    ----------
    spec : EncoderSpec
        The encoder.
    base_dir : Path
        Folder that relative paths are relative to.
    threads : int
        CPU threads of one forward pass (onnxruntime's ``intra_op_num_threads``; TensorFlow's intra-op
        threads where TensorFlow has not started yet).
    model_path : str or Path, optional
        Source ``dataset`` only: the dataset's trained model (``.keras``).

    Returns
    -------
    Encoder
        The loaded encoder.

    Raises
    ------
    ModelError
        One line naming the encoder and key: a missing file, a digest that differs, a model that cannot be
        loaded (for a ``.keras`` file: the Keras version that saved it, and what was tried), a layer that is
        not there, or an input that does not fit ``input_size`` and ``layout``.
    """
    head = f"encoders: {spec.name}"
    files = {}
    for key, written in spec.local_files().items():
        path = resolve(written, base_dir)
        if not path.is_file():
            raise ModelError(f"{head}: {key}: file not found: {path}")
        actual = file_digest(path)
        if actual != spec.sha256[written]:
            msg = f"{head}: sha256: {path} has sha256 {actual}, the config says {spec.sha256[written]}"
            raise ModelError(msg)
        files[key] = (path, actual)
    if spec.source == "dataset":
        if model_path is None:
            raise ModelError(f"{head}: dataset: source 'dataset' needs the path of {spec.dataset!r}'s model")
        path = resolve(str(model_path), base_dir)
        if not path.is_file():
            raise ModelError(f"{head}: dataset: model of dataset {spec.dataset!r} not found: {path}")
        files["model"] = (path, file_digest(path))

    if spec.source == "onnx":
        forward, dim, runtime = _load_onnx(spec, files["file"][0], threads)
    else:
        forward, dim, runtime = _load_keras(spec, files, threads)
    return Encoder(spec, dim=dim, forward=forward, files=files, runtime=runtime)


def _resize(tiles: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, 3) tiles as float32 (N, size, size, 3): area averaging down, bilinear up."""
    if tiles.shape[1] == size:
        return tiles.astype(np.float32)
    import tensorflow as tf

    method = "area" if tiles.shape[1] > size else "bilinear"
    return tf.image.resize(tf.constant(tiles, dtype=tf.float32), (size, size), method=method).numpy()


def _preprocessing(spec: EncoderSpec) -> Callable[[np.ndarray], np.ndarray]:
    """The ``normalization`` arithmetic on float32 0-255 RGB (module docstring)."""
    if spec.normalization == "application":
        import keras

        module = getattr(keras.applications, ARCHITECTURES[spec.architecture][1])
        return lambda x: np.asarray(module.preprocess_input(x), dtype=np.float32)
    mean_std = spec.mean_std()
    if mean_std is None:
        return lambda x: x
    mean, std = (np.asarray(values, dtype=np.float32) for values in mean_std)
    return lambda x: (x / np.float32(255) - mean) / std


def _load_onnx(spec: EncoderSpec, path: Path, threads: int) -> tuple[Callable, int, str]:
    import onnxruntime as ort

    head = f"encoders: {spec.name}"
    try:
        session = onnx_session(path, threads=threads, gpu=True)
    except Exception as error:  # onnxruntime raises its own, unexported exception types
        msg = f"{head}: file: {path} cannot be loaded: tried onnxruntime {ort.__version__}: {one_line(error)}"
        raise ModelError(msg) from error
    problems = onnx_input_problems(spec, session)
    if problems:
        raise ModelError(f"{head}: " + "; ".join(problems))
    source, target = session.get_inputs()[0], session.get_outputs()[0]
    dtype = np.float16 if source.type == "tensor(float16)" else np.float32

    def forward(x: np.ndarray) -> np.ndarray:
        if spec.layout == "nchw":
            x = x.transpose(0, 3, 1, 2)
        out = session.run([target.name], {source.name: np.ascontiguousarray(x, dtype=dtype)})[0]
        return out.astype(np.float32, copy=False)

    rest = list(target.shape[1:])
    if all(isinstance(d, int) for d in rest):
        sizes = rest
    else:  # symbolic output sides: one zero tile tells
        sizes = list(forward(np.zeros((1, spec.input_size, spec.input_size, 3), np.float32)).shape[1:])
    if sum(d != 1 for d in sizes) > 1:
        msg = f"{head}: file: the ONNX model's output {shape_text(target.shape)} is not one vector per tile"
        raise ModelError(msg)
    runtime = f"onnxruntime {ort.__version__} ({session.get_providers()[0]})"
    return forward, math.prod(sizes), runtime


def _keras_threads(threads: int) -> None:
    import tensorflow as tf

    try:
        if tf.config.threading.get_intra_op_parallelism_threads() != threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow has started: it keeps its threads
        pass


def _load_keras(
    spec: EncoderSpec, files: Mapping[str, tuple[Path, str]], threads: int
) -> tuple[Callable, int, str]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from ..model import build  # noqa: F401  (registers slidesnake's layers for load_model)

    _keras_threads(threads)
    head = f"encoders: {spec.name}"
    if spec.source == "keras_application":
        model = _keras_application(spec, files.get("weights", (None, ""))[0])
    else:
        key = "file" if spec.source == "keras_file" else "dataset"
        path = files["file" if spec.source == "keras_file" else "model"][0]
        loaded = _load_model(spec, key, path)
        if spec.source == "dataset":
            from ..model.fit import feature_model

            try:
                model = feature_model(loaded)
            except ValueError as error:
                msg = f"{head}: dataset: {path} is not a slidesnake model ({one_line(error)})"
                raise ModelError(msg) from error
        elif spec.layer is None:
            model = loaded
        else:
            try:
                layer = loaded.get_layer(spec.layer)
            except ValueError as error:
                names = [layer.name for layer in loaded.layers]
                msg = (
                    f"{head}: layer: the model in {path.name} has no layer {spec.layer!r} "
                    f"(its layers: {names})"
                )
                raise ModelError(one_line(msg)) from error
            model = keras.Model(loaded.inputs, layer.output)

    if len(model.inputs) != 1:
        raise ModelError(f"{head}: the model takes {len(model.inputs)} inputs, not one image")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[3] not in (3, None):
        raise ModelError(f"{head}: the model's input {shape_text(shape)} is not (N, H, W, 3)")
    if any(side is not None and side != spec.input_size for side in shape[1:3]):
        msg = f"{head}: input_size: {spec.input_size} but the model takes {shape_text(shape)} inputs"
        raise ModelError(msg)
    output = tuple(model.outputs[0].shape)
    if len(output) != 2 or output[1] is None:
        msg = (
            f"{head}: layer: the features {shape_text(output)} are not one vector per tile "
            "(name a pooled or flattened layer)"
        )
        raise ModelError(msg)
    return model.predict_on_batch, int(output[1]), f"keras {keras.__version__}"


def _keras_application(spec: EncoderSpec, weights_file: Path | None) -> Any:
    import keras

    head = f"encoders: {spec.name}"
    constructor = ARCHITECTURES[spec.architecture][0]
    imagenet = spec.weights == "imagenet"
    call = (
        f"keras.applications.{constructor}(include_top=False, pooling='avg', weights="
        f"{'imagenet' if imagenet else None!r}, input_shape=({spec.input_size}, {spec.input_size}, 3))"
    )
    try:
        model = getattr(keras.applications, constructor)(
            include_top=False,
            pooling="avg",
            weights="imagenet" if imagenet else None,
            input_shape=(spec.input_size, spec.input_size, 3),
        )
    except Exception as error:  # downloads and shape checks raise many kinds
        raise ModelError(f"{head}: weights: tried {call}: {one_line(error)}") from error
    if weights_file is not None:
        try:
            model.load_weights(weights_file)
        except Exception as error:  # h5py, zip and shape errors
            tried = f"tried load_weights: {one_line(error)}"
            msg = f"{head}: weights: {weights_file} does not fit {call}: {tried}"
            raise ModelError(msg) from error
    return model


def _load_model(spec: EncoderSpec, key: str, path: Path) -> Any:
    """``keras.models.load_model(path, compile=False)``; a failure says which Keras saved the file."""
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises ValueError, TypeError, OSError, zip errors...
        tried = f"tried keras.models.load_model(compile=False) with Keras {keras.__version__}"
        tried = f"{tried}: {one_line(error)}"
        msg = f"encoders: {spec.name}: {key}: {path} cannot be loaded: {_saved_by(path)}; {tried}"
        raise ModelError(msg) from error


def _saved_by(path: Path) -> str:
    """Which Keras saved a ``.keras`` archive (its ``metadata.json``), or why that cannot be told."""
    if path.suffix != ".keras":
        return f"a legacy {path.suffix} model"
    if not zipfile.is_zipfile(path):
        return "not a Keras archive (a .keras file is a zip of metadata.json, config.json, model.weights.h5)"
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read("metadata.json"))
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return "a zip without a readable metadata.json (not saved by Keras 3)"
    if not isinstance(metadata, dict):
        return "a zip whose metadata.json is not a mapping"
    version, date = metadata.get("keras_version", "?"), metadata.get("date_saved", "?")
    return f"saved by Keras {version} on {date}"
