"""Rule features in real Snakemake runs: every encoder source on a small study, and the refusals.

Site_a's six small demo slides, 64 px tiles at 0.5 um/px; four encoders of 64 px at 0.5 um/px: a
saved Keras model cut at its feature layer, the same network as an ONNX graph, a Keras application
(MobileNetV2, random weights) and the study's own site_a model. Each writes one feature store per
slide; the Keras and ONNX files give the same features. A wrong checksum, a field of view that
does not match the tiles and a non-commercial licence under ``licence_policy: commercial`` each stop
the run before any job, one line naming the encoder and the key.
"""

import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
from encoder_models import small_cnn_files
from workflow_runs import make_workdir, small_demo_sheet, snakemake

from conftest import ROOT
from slidesnake.features.store import FeatureStore
from slidesnake.store import TileStore

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.filterwarnings("ignore:In the future `np.object`:FutureWarning"),
]

SLIDES = [f"A0{k}" for k in range(1, 7)]
COMMON = {"input_size": 64, "mpp": 0.5, "licence": "MIT", "gated": False}


def _encoders(models):
    digests = models.digests
    return {
        "small_keras": {
            **COMMON,
            "source": "keras_file",
            "file": "models/small.keras",
            "layer": "features",
            "normalization": "imagenet",
            "sha256": {"models/small.keras": digests["small.keras"]},
        },
        "small_onnx": {
            **COMMON,
            "source": "onnx",
            "file": "models/hand_nchw.onnx",
            "layout": "nchw",
            "normalization": "imagenet",
            "sha256": {"models/hand_nchw.onnx": digests["hand_nchw.onnx"]},
        },
        "mobilenet": {
            **COMMON,
            "source": "keras_application",
            "architecture": "mobilenet_v2",
            "weights": "random",
            "normalization": "application",
        },
        "site_a_model": {**COMMON, "source": "dataset", "dataset": "site_a", "normalization": "none"},
    }


def _dataset():
    labels = {
        "source": "annotations",
        "classes": ["normal", "tumor"],
        "annotation_classes": {"Tumor": "tumor"},
        "unannotated": "normal",
    }
    return {"labels": labels, "positive_class": "tumor"}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("features")
    sheet = small_demo_sheet(folder, ("site_a",))
    workdir = folder / "run"
    (workdir / "models").mkdir(parents=True)
    models = small_cnn_files(workdir / "models")
    config = {"datasets": {"site_a": _dataset()}, "cohorts": {}, "encoders": _encoders(models)}
    make_workdir(workdir, sheet, **config)
    return workdir, models


@pytest.fixture(scope="module")
def extracted(study):
    workdir, _ = study
    targets = [f"results/features/{e}/{s}.zarr" for e in _encoders(study[1]) for s in SLIDES]
    done = snakemake(workdir, "--cores", "2", *targets)
    assert done.returncode == 0, done.stderr[-5000:]
    return workdir


def test_every_encoder_source_writes_one_feature_store_per_slide(extracted, study):
    dims = {"small_keras": 16, "small_onnx": 16, "mobilenet": 1280, "site_a_model": None}
    for encoder, dim in dims.items():
        for slide in SLIDES:
            features = FeatureStore(extracted / "results" / "features" / encoder / f"{slide}.zarr")
            tiles = TileStore(extracted / "results" / "tiles" / f"{slide}.zarr").index
            assert features.slide_id == slide and features.encoder == encoder
            assert features.count == len(tiles) > 0 and (dim is None or features.dim == dim)
            assert features.array.dtype == np.float16 and np.isfinite(features.features).all()
            pd.testing.assert_frame_equal(
                features.index[["row", "col", "x0", "y0"]].astype("int64"),
                tiles[["row", "col", "x0", "y0"]].astype("int64").reset_index(drop=True),
            )
            described = features.attrs["encoder_attributes"]
            assert described["name"] == encoder and described["licence"] == "MIT"
    onnx = features_of(extracted, "small_onnx", "A01").attrs["encoder_attributes"]
    assert onnx["sha256"] == [study[1].digests["hand_nchw.onnx"]] and onnx["layout"] == "nchw"


def features_of(workdir, encoder, slide):
    return FeatureStore(workdir / "results" / "features" / encoder / f"{slide}.zarr")


def test_the_keras_file_and_its_onnx_graph_give_the_same_features(extracted):
    for slide in SLIDES:
        keras_features = features_of(extracted, "small_keras", slide).features
        onnx_features = features_of(extracted, "small_onnx", slide).features
        np.testing.assert_allclose(onnx_features, keras_features, rtol=2e-3, atol=2e-3)  # float16 stores


def test_a_feature_store_exports_to_trident_and_stamp(extracted, tmp_path):
    store = extracted / "results" / "features" / "small_onnx" / "A01.zarr"
    for fmt, (features, coords) in {"trident": ("features", "coords"), "stamp": ("feats", "coords")}.items():
        out = tmp_path / f"A01.{fmt}.h5"
        command = [
            sys.executable,
            "-m",
            "slidesnake.features.cli",
            "export",
            "--format",
            fmt,
            str(store),
            str(out),
        ]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert done.returncode == 0, done.stderr
        with h5py.File(out) as h5:
            assert h5[features].shape == (features_of(extracted, "small_onnx", "A01").count, 16)
            assert h5[coords].shape[1] == 2


def _refused(study, tmp_path, name, change, words):
    workdir, models = study
    encoders = _encoders(models)
    change(encoders)
    config = {"datasets": {"site_a": _dataset()}, "cohorts": {}, "encoders": encoders}
    other = make_workdir(tmp_path / name, workdir.parent / "slides.tsv", **config)
    (other / "models").symlink_to(workdir / "models")
    if name == "licence":
        path = other / "config" / "config.yaml"
        path.write_text(path.read_text() + "licence_policy: commercial\n")
    done = snakemake(other, "--cores", "2", "-n")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert all(word in output for word in words), output[-3000:]
    assert not (other / "results").exists()  # stopped before any job


def test_a_wrong_checksum_stops_the_run_before_any_job(study, tmp_path):
    def change(encoders):
        encoders["small_onnx"]["sha256"] = {"models/hand_nchw.onnx": "0" * 64}

    _refused(study, tmp_path, "sha", change, ["encoders: small_onnx: sha256:", "0" * 64])


def test_a_field_of_view_that_is_not_the_tiles_stops_the_run(study, tmp_path):
    def change(encoders):
        encoders["small_keras"]["mpp"] = 1.0

    _refused(study, tmp_path, "fov", change, ["encoders: small_keras: input_size 64 at mpp 1 covers 64 um"])


def test_a_non_commercial_encoder_under_a_commercial_policy_stops_the_run(study, tmp_path):
    def change(encoders):
        encoders["mobilenet"]["licence"] = "CC-BY-NC-ND-4.0"

    _refused(study, tmp_path, "licence", change, ["encoders: mobilenet: licence: 'CC-BY-NC-ND-4.0'"])
