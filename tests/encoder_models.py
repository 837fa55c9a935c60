"""Small tile encoders the tests build and save themselves (no weights can be downloaded here).

A small CNN (any input side; pooled layer ``features``, then a dense head) saved as ``.keras``, its
feature part exported to ONNX by Keras 3 (``format="onnx"``, tf2onnx underneath), and the same network
built by hand with onnx.helper (fixed input side, NCHW and NHWC): the same features from every file.
"""

from __future__ import annotations

import types
from pathlib import Path

import keras
import numpy as np

from slidesnake.checksums import file_sha256


def small_cnn_files(folder: Path) -> types.SimpleNamespace:
    """Write ``small.keras``, ``small.onnx`` (its features), ``small_classifier.onnx`` (all of it),
    ``hand_nchw.onnx`` and ``hand_nhwc.onnx`` into ``folder``.

    Returns
    -------
    types.SimpleNamespace
        ``folder``, ``features`` (the Keras feature model), ``model`` (the whole classifier) and
        ``digests`` (file name -> sha256).
    """
    inputs = keras.Input((None, None, 3), name="tiles")
    x = inputs
    for k, (filters, strides) in enumerate(((8, 2), (16, 2), (16, 1))):
        x = keras.layers.Conv2D(
            filters,
            3,
            strides=strides,
            activation="relu",
            kernel_initializer=keras.initializers.GlorotUniform(seed=k),
            bias_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=10 + k),
            name=f"conv{k}",
        )(x)
    x = keras.layers.GlobalAveragePooling2D(name="features")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="small")
    model.save(folder / "small.keras")
    features = keras.Model(model.inputs, model.get_layer("features").output)
    features.export(
        folder / "small.onnx",
        format="onnx",
        verbose=False,
        input_signature=[keras.InputSpec(shape=(None, None, None, 3), dtype="float32")],
    )
    model.export(  # the whole classifier (softmax outputs), as a published tile classifier comes
        folder / "small_classifier.onnx",
        format="onnx",
        verbose=False,
        input_signature=[keras.InputSpec(shape=(None, None, None, 3), dtype="float32")],
    )
    for layout in ("nchw", "nhwc"):
        onnx_by_hand(model, folder / f"hand_{layout}.onnx", layout=layout, size=64)
    digests = {path.name: file_sha256(path) for path in folder.iterdir()}
    return types.SimpleNamespace(folder=folder, features=features, model=model, digests=digests)


def onnx_by_hand(model: keras.Model, path: Path, *, layout: str, size: int) -> None:
    """The Keras CNN's feature part as an ONNX graph from its layer weights: (Transpose,) Conv + Relu per
    layer, GlobalAveragePool, Flatten."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, weights, x = [], [], "tiles"
    if layout == "nhwc":
        nodes.append(helper.make_node("Transpose", [x], ["nchw"], perm=[0, 3, 1, 2]))
        x = "nchw"
    for k, conv in enumerate(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)):
        kernel, bias = (np.asarray(w) for w in conv.get_weights())
        weights += [
            numpy_helper.from_array(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)), f"w{k}"),
            numpy_helper.from_array(bias, f"b{k}"),
        ]
        nodes += [
            helper.make_node(
                "Conv", [x, f"w{k}", f"b{k}"], [f"c{k}"], strides=list(conv.strides), kernel_shape=[3, 3]
            ),
            helper.make_node("Relu", [f"c{k}"], [f"r{k}"]),
        ]
        x = f"r{k}"
    nodes += [
        helper.make_node("GlobalAveragePool", [x], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"]),
    ]
    shape = ["N", size, size, 3] if layout == "nhwc" else ["N", 3, size, size]
    graph = helper.make_graph(
        nodes,
        "small_cnn",
        [helper.make_tensor_value_info("tiles", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 16])],
        weights,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8  # what every onnxruntime of the last years reads
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
