"""Tile encoders (slidesnake.features: encoders, checks, loading) on real tiles and real models: Keras
files, Keras applications, ONNX models exported by Keras (tf2onnx underneath) and built by hand with
onnx.helper, and a study dataset's trained model. Every refusal is one line naming the encoder and the
config key."""

from __future__ import annotations

import json
import types
import zipfile

import h5py
import keras
import numpy as np
import openslide
import pytest
import tifffile
from encoder_models import small_cnn_files

from conftest import CMU, SHARED, defaults
from slidesnake.checksums import file_sha256
from slidesnake.errors import ModelError, StudyError
from slidesnake.features.checks import check_encoder, licence_kind
from slidesnake.features.encoders import (
    DATASET_LAYER,
    IMAGENET_MEAN,
    IMAGENET_STD,
    EncoderSpec,
    encoders_from_config,
)
from slidesnake.features.loading import load_encoder

#: Keras' ONNX export (tf2onnx) probes ``np.object``, which NumPy 2 warns about (upstream, harmless)
pytestmark = pytest.mark.filterwarnings("ignore:In the future `np.object`:FutureWarning")

NCT = SHARED / "tiles" / "nct-crc-he-100k"
BASE = {"input_size": 64, "mpp": 0.5, "normalization": "imagenet", "licence": "MIT", "gated": False}


def spec(name: str = "enc", **settings) -> EncoderSpec:
    return EncoderSpec.from_config(name, {**BASE, **settings})


def one_line(text: str, name: str, key: str) -> None:
    assert "\n" not in text, text
    assert text.startswith(f"encoders: {name}: {key}"), text


def imagenet(tiles: np.ndarray) -> np.ndarray:
    """The documented arithmetic of ``normalization: imagenet``: (rgb / 255 - mean) / std."""
    mean, std = np.float32(IMAGENET_MEAN), np.float32(IMAGENET_STD)
    return (tiles.astype(np.float32) / np.float32(255) - mean) / std


@pytest.fixture(scope="module")
def tiles() -> np.ndarray:
    """Real H&E tiles (NCT-CRC-HE-100K, 224 px at 0.5 um/px): two 64 px crops of each of the 9 classes."""
    images = [tifffile.imread(path)[..., :3] for path in sorted(NCT.glob("*.tif"))]
    return np.stack([crop for image in images for crop in (image[:64, :64], image[80:144, 80:144])])


@pytest.fixture(scope="module")
def slide_tiles() -> np.ndarray:
    """Four 256 px crops of the real CMU-1 slide."""
    with openslide.OpenSlide(CMU) as slide:
        crops = [slide.read_region((x, 1200), 0, (256, 256)) for x in (400, 700, 1000, 1300)]
    return np.stack([np.asarray(crop.convert("RGB")) for crop in crops])


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> types.SimpleNamespace:
    """The small CNN of :func:`encoder_models.small_cnn_files`, its .keras and ONNX files."""
    return small_cnn_files(tmp_path_factory.mktemp("cnn"))


def keras_file_spec(cnn, name="small", **settings) -> EncoderSpec:
    return spec(
        name,
        source="keras_file",
        file="small.keras",
        layer="features",
        sha256={"small.keras": cnn.digests["small.keras"]},
        **settings,
    )


def onnx_spec(cnn, file: str, layout: str, name="small_onnx", **settings) -> EncoderSpec:
    return spec(name, source="onnx", file=file, layout=layout, sha256={file: cnn.digests[file]}, **settings)


def test_keras_file_and_its_onnx_exports_give_the_same_features(cnn, tiles, tmp_path):
    expected = cnn.features.predict(imagenet(tiles), verbose=0)
    keras_encoder = load_encoder(keras_file_spec(cnn), base_dir=cnn.folder, threads=2)
    assert keras_encoder.dim == 16
    features = keras_encoder.embed(tiles)
    assert features.dtype == np.float32 and features.shape == (len(tiles), 16)
    np.testing.assert_allclose(features, expected, atol=1e-5)
    assert features.std(axis=0).max() > 0  # real tiles, not a constant
    for file, layout in (("small.onnx", "nhwc"), ("hand_nchw.onnx", "nchw"), ("hand_nhwc.onnx", "nhwc")):
        encoder = load_encoder(onnx_spec(cnn, file, layout), base_dir=cnn.folder, threads=2)
        assert encoder.dim == 16
        np.testing.assert_allclose(encoder.embed(tiles), features, atol=1e-4, err_msg=file)

    attributes = encoder.attributes()
    assert attributes["files"] == ["hand_nhwc.onnx"]
    assert attributes["sha256"] == [cnn.digests["hand_nhwc.onnx"]]
    assert attributes["mean"] == list(IMAGENET_MEAN) and attributes["std"] == list(IMAGENET_STD)
    assert (attributes["dim"], attributes["layout"], attributes["licence"]) == (16, "nhwc", "MIT")
    assert attributes["runtime"].startswith("onnxruntime")
    with h5py.File(tmp_path / "store.h5", "w") as store:  # fits feature store attributes as it is
        store.attrs.update(keras_encoder.attributes())
    with h5py.File(tmp_path / "store.h5") as store:
        assert store.attrs["sha256"][0] == cnn.digests["small.keras"]
        assert store.attrs["layer"] == "features" and store.attrs["input_size"] == 64
    assert json.loads(json.dumps(attributes)) == attributes
    assert load_encoder(keras_file_spec(cnn), base_dir=cnn.folder, threads=1).embed(tiles[:0]).shape == (
        0,
        16,
    )


def test_custom_normalization_is_the_documented_arithmetic(cnn, tiles):
    mean, std = (0.7, 0.5, 0.6), (0.2, 0.25, 0.3)
    encoder = load_encoder(
        keras_file_spec(cnn, normalization="custom", mean=list(mean), std=list(std)),
        base_dir=cnn.folder,
        threads=1,
    )
    x = (tiles.astype(np.float32) / 255 - np.float32(mean)) / np.float32(std)
    np.testing.assert_allclose(encoder.embed(tiles), cnn.features.predict(x, verbose=0), atol=1e-5)
    assert encoder.attributes()["mean"] == list(mean)


def test_keras_applications_from_random_init_and_from_a_checksummed_weights_file(tiles, tmp_path):
    small = np.ascontiguousarray(tiles[:, :32, :32])
    mobilenet = load_encoder(
        spec(
            "mobilenet",
            source="keras_application",
            architecture="mobilenet_v2",
            weights="random",
            input_size=32,
            mpp=1.0,
            normalization="application",
        ),
        base_dir=tmp_path,
        threads=1,
    )
    assert mobilenet.dim == 1280 and mobilenet.embed(small[:4]).shape == (4, 1280)
    assert mobilenet.attributes()["files"] == [] and mobilenet.attributes()["mean"] == []

    densenet = keras.applications.DenseNet121(
        include_top=False, pooling="avg", weights=None, input_shape=(32, 32, 3)
    )
    densenet.save_weights(tmp_path / "densenet.weights.h5")
    digest = file_sha256(tmp_path / "densenet.weights.h5")
    encoder = load_encoder(
        spec(
            "densenet",
            source="keras_application",
            architecture="densenet121",
            weights="densenet.weights.h5",
            sha256={"densenet.weights.h5": digest},
            input_size=32,
            mpp=1.0,
            normalization="application",
        ),
        base_dir=tmp_path,
        threads=1,
    )
    features = encoder.embed(small[:6])
    assert encoder.dim == 1024 and features.shape == (6, 1024)
    expected = densenet.predict(
        keras.applications.densenet.preprocess_input(small[:6].astype("float32")), verbose=0
    )
    np.testing.assert_allclose(features, expected, atol=1e-4)  # the file's weights, not a new random init
    assert encoder.attributes()["sha256"] == [digest]


def test_a_datasets_trained_model_is_cut_at_its_features_layer(tiles, tmp_path):
    from slidesnake.model.build import FEATURES, build_model
    from slidesnake.model.fit import feature_model
    from slidesnake.settings import ModelSettings

    assert DATASET_LAYER == FEATURES
    settings = ModelSettings.from_config({**defaults("model"), "input_size": 32, "augment": None})
    model = build_model(settings, tile_size=64, classes=["normal", "tumor"])
    model.save(tmp_path / "model.keras")
    trained = spec("site_a", source="dataset", dataset="site_a", normalization="none", licence="unknown")
    assert trained.layer == FEATURES
    with pytest.raises(ModelError, match="needs the path"):
        load_encoder(trained, base_dir=tmp_path, threads=1)
    encoder = load_encoder(trained, base_dir=tmp_path, threads=1, model_path="model.keras")
    expected = feature_model(model).predict(tiles[:8].astype(np.float32), verbose=0)
    assert encoder.dim == expected.shape[1]
    np.testing.assert_allclose(encoder.embed(tiles[:8]), expected, atol=1e-5)
    assert encoder.attributes()["sha256"] == [file_sha256(tmp_path / "model.keras")]


def test_tiles_of_the_same_field_of_view_are_resized(cnn, slide_tiles):
    encoder_spec = keras_file_spec(cnn, name="half", input_size=128, mpp=0.5)
    assert (
        check_encoder(encoder_spec, tile_mpp=0.25, tile_size=256, licence_policy="any", base_dir=cnn.folder)
        == []
    )
    features = load_encoder(encoder_spec, base_dir=cnn.folder, threads=1).embed(slide_tiles)
    halved = slide_tiles.astype(np.float64).reshape(4, 128, 2, 128, 2, 3).mean(axis=(2, 4))  # area: 2x2 means
    np.testing.assert_allclose(features, cnn.features.predict(imagenet(halved), verbose=0), atol=1e-4)
    (problem,) = check_encoder(
        encoder_spec, tile_mpp=0.5, tile_size=256, licence_policy="any", base_dir=cnn.folder
    )
    assert problem == (
        "encoders: half: input_size 128 at mpp 0.5 covers 64 um; "
        "the tiles cover 128 um (tile_size 256 at 0.5 um/px)"
    )


def test_refusals_are_one_line_naming_the_encoder_and_key(cnn, tmp_path):
    def check(encoder_spec, policy="any", tile_size=64, tile_mpp=0.5):
        return check_encoder(
            encoder_spec, tile_mpp=tile_mpp, tile_size=tile_size, licence_policy=policy, base_dir=cnn.folder
        )

    assert check(keras_file_spec(cnn)) == []
    assert check(onnx_spec(cnn, "hand_nchw.onnx", "nchw")) == []

    gone = spec("gone", source="onnx", file="gone.onnx", layout="nhwc", sha256={"gone.onnx": "a" * 64})
    (problem,) = check(gone)
    one_line(problem, "gone", "file")
    assert "not found" in problem and "gone.onnx" in problem
    with pytest.raises(ModelError, match="not found") as error:
        load_encoder(gone, base_dir=cnn.folder, threads=1)
    one_line(str(error.value), "gone", "file")

    forged = spec("forged", source="onnx", file="small.onnx", layout="nhwc", sha256={"small.onnx": "B" * 64})
    (problem,) = check(forged)
    one_line(problem, "forged", "sha256")
    assert cnn.digests["small.onnx"] in problem and "b" * 64 in problem and "small.onnx" in problem
    with pytest.raises(ModelError, match=cnn.digests["small.onnx"]):
        load_encoder(forged, base_dir=cnn.folder, threads=1)

    declared = onnx_spec(cnn, "hand_nchw.onnx", "nhwc", name="declared")
    (problem,) = check(declared)
    one_line(problem, "declared", "layout")
    assert "(N, 3, 64, 64)" in problem and "set layout: nchw" in problem
    with pytest.raises(ModelError, match="layout") as error:
        load_encoder(declared, base_dir=cnn.folder, threads=1)
    one_line(str(error.value), "declared", "layout")
    (problem,) = check(onnx_spec(cnn, "hand_nhwc.onnx", "nhwc", name="sized", input_size=128, mpp=0.25))
    one_line(problem, "sized", "input_size")
    assert "[64, 64]" in problem

    wide = spec(
        "wide", source="keras_application", architecture="densenet121", weights="random", input_size=224
    )
    assert check(wide, tile_size=256) == [
        "encoders: wide: input_size 224 at mpp 0.5 covers 112 um; "
        "the tiles cover 128 um (tile_size 256 at 0.5 um/px)"
    ]
    assert check(wide, tile_size=226) == []  # within 2 %

    uni = keras_file_spec(cnn, name="uni", licence="CC-BY-NC-ND-4.0", gated=True)
    assert check(uni) == []
    (problem,) = check(uni, policy="commercial")
    one_line(problem, "uni", "licence")
    assert "CC-BY-NC-ND-4.0" in problem and "commercial" in problem
    (problem,) = check(keras_file_spec(cnn, name="who", licence="unknown"), policy="commercial")
    one_line(problem, "who", "licence")
    assert check(keras_file_spec(cnn, licence="Apache-2.0"), policy="commercial") == []
    assert [licence_kind(n) for n in ("CC-BY-NC-SA-4.0", "NCSA", "CC-BY-4.0", "other", "research-only")] == [
        "non-commercial",
        "commercial",
        "commercial",
        "unknown",
        "non-commercial",
    ]


def test_a_file_that_is_not_a_keras_archive_names_what_was_tried(tmp_path):
    (tmp_path / "fake.keras").write_bytes(b"<html>403 Forbidden</html>\n")
    with zipfile.ZipFile(tmp_path / "old.keras", "w") as archive:
        archive.writestr(
            "metadata.json", json.dumps({"keras_version": "3.0.1", "date_saved": "2023-12-01@10:00"})
        )
        archive.writestr("config.json", "{not json")
    for name, saved in (("fake", "not a Keras archive"), ("old", "saved by Keras 3.0.1 on 2023-12-01@10:00")):
        path = tmp_path / f"{name}.keras"
        encoder_spec = spec(name, source="keras_file", file=path.name, sha256={path.name: file_sha256(path)})
        with pytest.raises(ModelError) as error:
            load_encoder(encoder_spec, base_dir=tmp_path, threads=1)
        message = str(error.value)
        one_line(message, name, "file")
        assert saved in message and "tried keras.models.load_model(compile=False)" in message
        assert f"Keras {keras.__version__}" in message


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"source": "torch"}, "source"),
        ({"source": "onnx", "file": "m.onnx", "layout": "nhwc"}, "sha256"),
        (
            {"source": "onnx", "file": "m.onnx", "layout": "nhwc", "sha256": {"m.onnx": "xyz"}},
            "sha256: m.onnx",
        ),
        (
            {"source": "onnx", "file": "m.onnx", "layout": "nhwc", "sha256": {"n.onnx": "a" * 64}},
            "sha256: n.onnx",
        ),
        ({"source": "onnx", "file": "m.onnx", "layout": "hwc", "sha256": {"m.onnx": "a" * 64}}, "layout"),
        ({"source": "onnx", "file": "m.keras", "layout": "nhwc"}, "file"),
        ({"source": "keras_file", "file": "m.keras", "layout": "nhwc"}, "layout"),
        ({"source": "keras_file", "file": "m.keras", "colour": "rgb"}, "colour"),
        ({"source": "keras_application", "architecture": "densenet121"}, "weights"),
        ({"source": "keras_application", "architecture": "vit", "weights": "random"}, "architecture"),
        ({"source": "keras_application", "architecture": "resnet50", "weights": None}, "weights"),
        ({"source": "dataset", "dataset": "a", "normalization": "imagenet"}, "normalization"),
        ({"source": "dataset", "dataset": "a", "normalization": "none", "layer": "conv"}, "layer"),
        (
            {"source": "onnx", "file": "m.onnx", "layout": "nhwc", "normalization": "application"},
            "normalization",
        ),
        (
            {
                "source": "keras_application",
                "architecture": "resnet50",
                "weights": "random",
                "mean": [0, 0, 0],
            },
            "mean",
        ),
        (
            {
                "source": "keras_application",
                "architecture": "resnet50",
                "weights": "random",
                "normalization": "custom",
            },
            "mean",
        ),
        (
            {"source": "keras_application", "architecture": "resnet50", "weights": "random", "gated": "no"},
            "gated",
        ),
        ({"source": "keras_application", "architecture": "resnet50", "weights": "random", "mpp": 0}, "mpp"),
        (
            {
                "source": "keras_application",
                "architecture": "resnet50",
                "weights": "random",
                "input_size": 2.5,
            },
            "input_size",
        ),
    ],
)
def test_config_errors_are_one_line_naming_the_key(changes, key):
    with pytest.raises(StudyError) as error:
        EncoderSpec.from_config("uni", {**BASE, **changes})
    message = str(error.value)
    assert message.startswith(f"config 'encoders: uni: {key}': ") and "\n" not in message, message


def test_the_section_reads_every_encoder():
    section = {
        "resnet": {**BASE, "source": "keras_application", "architecture": "resnet50", "weights": "imagenet"},
        "uni": {
            **BASE,
            "source": "onnx",
            "file": "/models/uni.onnx",
            "layout": "nchw",
            "input_size": 224,
            "licence": "CC-BY-NC-ND-4.0",
            "gated": True,
            "sha256": {"/models/uni.onnx": "A" * 64},
        },
    }
    encoders = encoders_from_config(section)
    assert list(encoders) == ["resnet", "uni"]
    assert encoders["resnet"].sha256 == {} and encoders["resnet"].layout == "nhwc"
    assert (
        encoders["uni"].sha256 == {"/models/uni.onnx": "a" * 64} and encoders["uni"].field_of_view_um == 112
    )
    with pytest.raises(TypeError):
        encoders["uni"].sha256["x"] = "y"  # frozen
    assert encoders_from_config(None) == {}
