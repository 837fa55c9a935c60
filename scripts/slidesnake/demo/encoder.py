"""The demo's generic tile encoder: a fixed bank of random texture filters, as an ONNX file.

No foundation model can be downloaded here, and the demo's own tumor/normal models see little of a
trait they were not trained on. This encoder stands in for a generic one: three 2-strided convolutions
(3 -> 24 -> 48 -> 64 channels, kernels 5, 3, 3, ReLU) with seeded zero-mean random filters (random
convolutional features are a classic texture descriptor), the second and third layers globally averaged:
112 features per 128 px tile (nchw, ImageNet-normalised RGB). It is never trained, so its bytes, and so
its SHA-256 in the demo config, are fixed: ``python -m slidesnake.demo.encoder FILE`` writes it again.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

#: Output channels and kernel sizes of the three convolutions; the last two are pooled into features.
WIDTHS = (24, 48, 64)
KERNELS = (5, 3, 3)
#: The tile side the encoder is declared for (any side works: the pooling is global).
INPUT_SIZE = 128
SEED = 20261207


def texture_encoder_bytes(seed: int = SEED) -> bytes:
    """The encoder as a serialised ONNX model (opset 17), the same bytes for the same seed."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, weights, pooled = [], [], []
    previous, channels = "input", 3
    for k, (width, size) in enumerate(zip(WIDTHS, KERNELS, strict=True)):
        kernel = rng.standard_normal((width, channels, size, size))
        kernel -= kernel.mean(axis=(1, 2, 3), keepdims=True)  # no response to flat colour
        kernel *= np.sqrt(2.0 / (channels * size * size))
        weights.append(numpy_helper.from_array(kernel.astype(np.float32), f"kernel{k}"))
        nodes += [
            helper.make_node(
                "Conv",
                [previous, f"kernel{k}"],
                [f"conv{k}"],
                kernel_shape=[size, size],
                strides=[2, 2],
                pads=[size // 2] * 4,
            ),  # fmt: skip
            helper.make_node("Relu", [f"conv{k}"], [f"relu{k}"]),
        ]
        if k:
            nodes += [
                helper.make_node("GlobalAveragePool", [f"relu{k}"], [f"pool{k}"]),
                helper.make_node("Flatten", [f"pool{k}"], [f"flat{k}"]),
            ]
            pooled.append(f"flat{k}")
        previous, channels = f"relu{k}", width
    nodes.append(helper.make_node("Concat", pooled, ["features"], axis=1))
    graph = helper.make_graph(
        nodes,
        "demo_texture",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["tiles", 3, INPUT_SIZE, INPUT_SIZE])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["tiles", sum(WIDTHS[1:])])],
        weights,
    )
    model = helper.make_model(graph, producer_name="slidesnake", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString(deterministic=True)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m slidesnake.demo.encoder FILE``: write the encoder, print its SHA-256."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    data = texture_encoder_bytes()
    args.file.parent.mkdir(parents=True, exist_ok=True)
    args.file.write_bytes(data)
    print(f"{args.file}: {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
