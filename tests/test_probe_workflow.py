"""The fixed-feature regime in a real Snakemake run: a linear probe as a dataset's deployed model, and the
regimes table comparing it with a probe on another encoder, a model fine-tuned from another site's and
one trained from scratch.

Twelve small demo slides (site_a A01-A06, site_b B01-B06), 64 px tiles at 0.5 um/px. site_a's model is a
small CNN; site_b's model is a logistic probe on the features of an ONNX encoder (the path a foundation
model takes); a cohort predicts site_a's slides with site_b's probe. Its maps, exports, metrics, t-SNE
and report come from the same rules as a network's.
"""

import json

import keras
import numpy as np
import pandas as pd
import pytest
from encoder_models import small_cnn_files
from workflow_runs import check_stored_tables, make_workdir, small_demo_sheet, snakemake

from slidesnake.features.store import FeatureStore

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.filterwarnings("ignore:In the future `np.object`:FutureWarning"),
]

COMMON = {"input_size": 64, "mpp": 0.5, "licence": "MIT", "gated": False, "normalization": "imagenet"}
LABELS = {
    "source": "annotations",
    "classes": ["normal", "tumor"],
    "annotation_classes": {"Tumor": "tumor"},
    "unannotated": "normal",
}


def _config(models):
    digests = models.digests
    encoders = {
        "small_keras": {
            **COMMON,
            "source": "keras_file",
            "file": "models/small.keras",
            "layer": "features",
            "sha256": {"models/small.keras": digests["small.keras"]},
        },
        "small_onnx": {
            **COMMON,
            "source": "onnx",
            "file": "models/hand_nchw.onnx",
            "layout": "nchw",
            "sha256": {"models/hand_nchw.onnx": digests["hand_nchw.onnx"]},
        },
    }
    datasets = {
        "site_a": {"labels": LABELS, "positive_class": "tumor"},
        "site_b": {
            "labels": LABELS,
            "positive_class": "tumor",
            "model": {"kind": "probe", "encoder": "small_onnx"},
            "regimes": {
                "keras_svm": {"encoder": "small_keras", "classifier": "svm"},
                "fine_tuned": {"kind": "cnn", "encoder": None, "init": "site_a"},
                "scratch": {"kind": "cnn", "encoder": None},
            },
        },
    }
    cohorts = {"site_a_by_probe_b": {"model": "site_b", "slides": "site_a"}}
    return {
        "datasets": datasets,
        "cohorts": cohorts,
        "encoders": encoders,
        "prediction": {"stride": None},
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe")
    sheet = small_demo_sheet(folder)
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


def _card(workdir, folder="site_b"):
    return json.loads((workdir / "results" / "models" / folder / "config.json").read_text())


def test_the_probe_records_its_encoder_and_the_c_it_chose(ran, study):
    card = _card(ran)
    assert card["model"]["kind"] == "probe" and card["model"]["classifier"] == "logistic"
    assert card["encoder"]["name"] == "small_onnx"
    assert card["encoder"]["settings"]["sha256"] == {
        "models/hand_nchw.onnx": study[1].digests["hand_nchw.onnx"]
    }
    history = pd.read_csv(ran / "results" / "models" / "site_b" / "history.tsv", sep="\t")
    assert len(history) == 5 and history["chosen"].sum() == 1 and history["val_loss"].notna().all()
    assert (ran / "results" / "reports" / "site_b" / "training_curves.png").stat().st_size > 0


def test_the_probe_maps_slides_from_the_stored_features(ran):
    """Oracle: the probe's tile probabilities in predict equal the saved probe on the stored features."""
    head = keras.models.load_model(ran / "results" / "models" / "site_b" / "model.keras")
    for slide in ("B01", "B04"):
        tiles = pd.read_csv(ran / "results" / "predictions" / f"{slide}.tsv", sep="\t")
        store = FeatureStore(ran / "results" / "features" / "small_onnx" / f"{slide}.zarr")
        expected = head.predict(store.features, verbose=0)[:, 1]
        joined = tiles.merge(store.index[["row", "col"]].assign(expected=expected), on=["row", "col"])
        assert len(joined) == len(tiles) == store.count > 0
        np.testing.assert_allclose(joined["p_tumor"], joined["expected"], atol=2e-3)  # float16 stores
        assert joined["p_tumor"].std() > 0.01  # a map, not a constant
        for output in (
            f"heatmaps/{slide}.jpg",
            f"classmaps/{slide}.jpg",
            f"qupath/{slide}.geojson",
            f"overlays/{slide}.ome.tif",
        ):
            assert (ran / "results" / output).stat().st_size > 0
        assert (ran / "results" / "maps" / f"{slide}.zarr").is_dir()


def test_the_probe_is_evaluated_and_reported_as_any_model(ran):
    metrics = pd.read_csv(ran / "results" / "reports" / "site_b" / "metrics.tsv", sep="\t")
    tiles = metrics[(metrics["level"] == "tile") & (metrics["split"] == "test")]
    assert len(tiles) == 1 and 0.5 < tiles["auc"].iloc[0] <= 1.0
    cohort = metrics_of = pd.read_csv(
        ran / "results" / "reports" / "site_a_by_probe_b" / "metrics.tsv", sep="\t"
    )
    assert (metrics_of["split"] == "external").any() and len(cohort)
    assert (ran / "results" / "reports" / "site_b" / "tsne.png").stat().st_size > 0
    study_page = (ran / "results" / "reports" / "study.html").read_text()
    assert "linear probe (logistic) on encoder small_onnx" in study_page
    assert "Transfer-learning regimes" in study_page


def test_the_regimes_table_compares_four_ways_to_train_one_dataset(ran):
    regimes = pd.read_csv(ran / "results" / "reports" / "regimes.tsv", sep="\t").set_index("regime")
    assert list(regimes.index) == ["model", "fine_tuned", "keras_svm", "scratch"]
    assert regimes.loc["model", "training"] == "linear probe (logistic) on encoder small_onnx"
    assert regimes.loc["keras_svm", "training"] == "linear probe (svm) on encoder small_keras"
    assert regimes.loc["fine_tuned", "training"] == "small_cnn fine-tuned from site_a"
    assert regimes.loc["scratch", "training"] == "small_cnn from scratch"
    assert (regimes["train_seconds"] > 0).all() and (regimes["n"] > 0).all()
    assert regimes["patients"].nunique() == 1  # the same test split for every regime
    for regime, row in regimes.iterrows():
        assert 0.0 <= row["auc"] <= 1.0, regime
        assert row["auc_ci_low"] < row["auc_ci_high"] or "not estimable" in str(row["note"]), regime
    log = (ran / "results" / "logs" / "train_regime" / "site_b" / "fine_tuned.log").read_text()
    assert "layers start from results/models/site_a/model.keras" in log


def test_a_probe_naming_an_unknown_encoder_stops_the_run_before_any_job(study, tmp_path):
    workdir, models = study
    config = _config(models)
    config["datasets"]["site_b"]["model"]["encoder"] = "uni"
    other = make_workdir(tmp_path / "unknown", workdir.parent / "slides.tsv", **config)
    (other / "models").symlink_to(workdir / "models")
    done = snakemake(other, "--cores", "2", "-n")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "datasets: site_b: model: encoder: 'uni' is not an encoder of config encoders" in output, output[
        -3000:
    ]
    assert not (other / "results").exists()
