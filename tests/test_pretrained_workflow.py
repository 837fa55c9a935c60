"""A tile classifier from outside deployed without training (model kind pretrained), in a real Snakemake run.

site_b's six small demo slides; its model is a saved Keras classifier (two softmax outputs) the test
builds, and a regime deploys the same network exported to ONNX. Nothing is trained: every patient is a
test one, the slides are mapped, exported and evaluated by the same rules as a trained model's, and the
tile probabilities are the network's own on the stored tiles.
"""

import json

import numpy as np
import pandas as pd
import pytest
from encoder_models import small_cnn_files
from workflow_runs import check_stored_tables, make_workdir, small_demo_sheet, snakemake

from slidesnake.store import TileStore

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.filterwarnings("ignore:In the future `np.object`:FutureWarning"),
]

COMMON = {"input_size": 64, "mpp": 0.5, "licence": "Apache-2.0", "gated": False, "normalization": "none"}
LABELS = {
    "source": "annotations",
    "classes": ["normal", "tumor"],
    "annotation_classes": {"Tumor": "tumor"},
    "unannotated": "normal",
}


def _config(models, classes=("normal", "tumor")):
    digests = models.digests
    encoders = {
        "published_keras": {
            **COMMON,
            "source": "keras_file",
            "file": "models/small.keras",
            "sha256": {"models/small.keras": digests["small.keras"]},
        },
        "published_onnx": {
            **COMMON,
            "source": "onnx",
            "file": "models/small_classifier.onnx",
            "layout": "nhwc",
            "sha256": {"models/small_classifier.onnx": digests["small_classifier.onnx"]},
        },
    }
    dataset = {
        "labels": {**LABELS, "classes": list(classes)},
        "positive_class": "tumor",
        "model": {"kind": "pretrained", "encoder": "published_keras"},
        "regimes": {"onnx": {"encoder": "published_onnx"}},
    }
    return {
        "datasets": {"site_b": dataset},
        "cohorts": {},
        "encoders": encoders,
        "prediction": {"stride": None},
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pretrained")
    sheet = small_demo_sheet(folder, ("site_b",))
    workdir = folder / "run"
    (workdir / "models").mkdir(parents=True)
    models = small_cnn_files(workdir / "models")
    make_workdir(workdir, sheet, **_config(models))
    return workdir, models


@pytest.fixture(scope="module")
def ran(study):
    workdir, _ = study
    done = snakemake(workdir, "--cores", "2")
    assert done.returncode == 0, done.stderr[-5000:]
    check_stored_tables(workdir)
    return workdir


def test_a_pretrained_classifier_maps_slides_with_its_own_outputs(ran, study):
    """Oracle: the deployed tile probabilities are the saved Keras network's on the stored tiles."""
    network = study[1].model
    card = json.loads((ran / "results" / "models" / "site_b" / "config.json").read_text())
    assert card["model"]["kind"] == "pretrained" and card["encoder"]["name"] == "published_keras"
    splits = pd.read_csv(ran / "results" / "splits" / "site_b.tsv", sep="\t")
    assert set(splits["split"]) == {"test"}  # nothing is trained: every patient is a test one
    for slide in ("B01", "B05"):
        tiles = pd.read_csv(ran / "results" / "predictions" / f"{slide}.tsv", sep="\t")
        store = TileStore(ran / "results" / "tiles" / f"{slide}.zarr")
        index = store.index.reset_index(drop=True)
        pixels = store.read_tiles(index)
        expected = network.predict(pixels.astype("float32"), verbose=0)[:, 1]
        joined = tiles.merge(index[["row", "col"]].assign(expected=expected), on=["row", "col"])
        assert len(joined) == len(tiles) > 0
        np.testing.assert_allclose(joined["p_tumor"], joined["expected"], atol=1e-4)
        for output in (f"heatmaps/{slide}.jpg", f"qupath/{slide}.geojson", f"overlays/{slide}.ome.tif"):
            assert (ran / "results" / output).stat().st_size > 0


def test_a_pretrained_classifier_is_evaluated_on_every_patient(ran):
    metrics = pd.read_csv(ran / "results" / "reports" / "site_b" / "metrics.tsv", sep="\t")
    assert set(metrics["split"]) == {"test"} and (metrics["level"] == "tile").any()
    page = (ran / "results" / "reports" / "study.html").read_text()
    assert "pretrained classifier published_keras (not trained here)" in page
    regimes = pd.read_csv(ran / "results" / "reports" / "regimes.tsv", sep="\t").set_index("regime")
    assert list(regimes.index) == ["model", "onnx"]
    # the ONNX export of the same network gives the same metrics
    assert regimes.loc["model", "auc"] == pytest.approx(regimes.loc["onnx", "auc"], abs=1e-3)
    assert (regimes["n"] == regimes.loc["model", "n"]).all() and regimes.loc["model", "n"] > 0


def test_a_classifier_whose_outputs_are_not_the_classes_stops_its_job_naming_both(study, tmp_path):
    workdir, models = study
    config = _config(models, classes=("normal", "tumor", "stroma"))
    config["datasets"]["site_b"]["regimes"] = {}
    other = make_workdir(tmp_path / "classes", workdir.parent / "slides.tsv", **config)
    (other / "models").symlink_to(workdir / "models")
    done = snakemake(other, "--cores", "2", "results/models/site_b/model.keras")
    assert done.returncode != 0
    log = (other / "results" / "logs" / "train" / "site_b.log").read_text()
    assert "encoders: published_keras: the classifier gives 2 outputs, but labels: classes has 3" in log
    assert not (other / "results" / "models" / "site_b" / "model.keras").exists()
