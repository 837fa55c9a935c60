"""Cross-validation run for real through Snakemake: site_a of the demo with ``splits: folds: 3``, and the
radiograph example (``config/examples/xray.yaml``, 5 folds) as the README documents it."""

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml
from honest import assert_interval
from workflow_runs import check_stored_tables, make_workdir, snakemake, write_config

from conftest import ROOT, SHARED
from slidesnake.demo import demo_sheet, write_demo_slide

pytestmark = pytest.mark.workflow
FOLDS = 3
LABELS = {
    "source": "annotations",
    "classes": ["normal", "tumor"],
    "annotation_classes": {"Tumor": "tumor"},
    "unannotated": "normal",
}
SPLITS = {"fractions": {"train": 0.5, "val": 0.25, "test": 0.25}, "folds": FOLDS}


def _sheet(folder, sites=None):
    demo = demo_sheet(folder, small=True)
    demo = demo[demo["dataset"] == "site_a"].copy()
    for row in demo.itertuples():
        write_demo_slide(row.path, row.annotations, row.slide_id, "site_a", small=True)
    if sites:
        demo["site"] = demo["patient_id"].map(sites)
    demo.to_csv(folder / "slides.tsv", sep="\t", index=False)
    return folder / "slides.tsv"


def _workdir(folder, sheet, **splits):
    dataset = {"labels": LABELS, "positive_class": "tumor"}
    return make_workdir(folder, sheet, datasets={"site_a": dataset}, cohorts={}, splits=SPLITS | splits)


@pytest.fixture(scope="module")
def crossval_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crossval")
    workdir = _workdir(folder / "study", _sheet(folder))
    done = snakemake(workdir, "--cores", "2")
    assert done.returncode == 0, done.stderr[-4000:]
    assert "results/crossval/{dataset}/metrics.tsv" in check_stored_tables(workdir)
    return workdir / "results"


def test_one_model_per_fold_and_an_ensemble_deployed(crossval_run):
    models = crossval_run / "models" / "site_a"
    for fold in range(FOLDS):
        config = json.loads((models / "folds" / str(fold) / "config.json").read_text())
        assert config["fold"] == fold and config["train_items"] > 0 and config["val_items"] > 0
    deployed = json.loads((models / "config.json").read_text())
    assert deployed["deploy"] == "ensemble" and len(deployed["folds"]) == FOLDS
    with zipfile.ZipFile(models / "model.keras") as saved:
        layers = json.loads(saved.read("config.json"))["config"]["layers"]
    assert [layer["name"] for layer in layers if layer["name"].startswith("fold_")] == [
        "fold_0",
        "fold_1",
        "fold_2",
    ]
    history = pd.read_csv(models / "history.tsv", sep="\t")
    assert sorted(history["fold"].unique()) == list(range(FOLDS))
    assert (crossval_run / "maps" / "A01.zarr").is_dir()  # slides are mapped by the ensemble


def test_out_of_fold_predictions_cover_every_development_entry_once(crossval_run):
    entries = pd.read_csv(crossval_run / "entries" / "site_a.tsv", sep="\t")
    oof = pd.read_csv(crossval_run / "crossval" / "site_a" / "oof.tsv", sep="\t")
    development = entries[entries["split"] != "test"]
    keys = ["item", "row", "col"]
    assert not oof.duplicated(keys).any()
    assert sorted(map(tuple, oof[keys].to_numpy())) == sorted(map(tuple, development[keys].to_numpy()))
    assert set(oof["item"]) & set(entries.loc[entries["split"] == "test", "item"]) == set()
    np.testing.assert_allclose(oof[["p_normal", "p_tumor"]].sum(axis=1), 1.0, atol=1e-5)
    splits = pd.read_csv(crossval_run / "splits" / "site_a.tsv", sep="\t")
    fold_of = dict(zip(splits["item"], splits["fold"], strict=True))
    assert (oof["fold"] == oof["item"].map(fold_of)).all()  # each entry predicted by its fold's model
    assert (splits.groupby("patient_id")["fold"].nunique() == 1).all()


def test_metrics_per_fold_pooled_and_across_folds(crossval_run):
    metrics = pd.read_csv(crossval_run / "crossval" / "site_a" / "metrics.tsv", sep="\t", dtype={"fold": str})
    tiles = metrics[metrics["level"] == "tile"].set_index("fold")
    assert list(tiles.index) == ["0", "1", "2", "pooled", "mean"]
    assert {"auc_ci_low", "auc_ci_high", "accuracy_sd", "balanced_accuracy_ci_low"} <= set(metrics.columns)
    folds = tiles.loc[["0", "1", "2"], "accuracy"]
    assert tiles.at["mean", "accuracy"] == pytest.approx(folds.mean(), abs=1e-4)
    assert tiles.at["mean", "accuracy_sd"] == pytest.approx(folds.std(ddof=1), abs=1e-4)
    assert_interval(tiles.loc["mean"], "accuracy")
    assert tiles.at["pooled", "n"] == tiles.loc[["0", "1", "2"], "n"].sum()
    pooled = tiles.loc["pooled"]
    assert_interval(pooled, "auc")
    assert set(metrics["level"]) == {"tile", "slide", "patient"}
    slides = metrics[metrics["level"] == "slide"].set_index("fold")
    mean = slides.loc["mean"]  # NaN AUC has no interval; all folds agreeing give none either, and say so
    assert not np.isnan(mean["auc"]) or np.isnan(mean["auc_ci_low"])
    assert not np.isnan(mean["auc_ci_low"]) or mean["auc_ci_method"].startswith("not estimable")
    assert (tiles["ci_method"].str.len() > 0).all() and "note" in metrics
    page = (crossval_run / "reports" / "site_a" / "summary.html").read_text()
    assert "3-fold cross-validation" in page
    assert (crossval_run / "crossval" / "site_a" / "roc.png").stat().st_size > 10_000


def test_fewer_sites_than_folds_stops_before_any_job(tmp_path):
    sheet = _sheet(tmp_path, sites={"PA1": "north", "PA2": "north", "PA3": "south", "PA4": "south"})
    done = snakemake(_workdir(tmp_path / "study", sheet, site_column="site"), "-n")
    assert done.returncode != 0
    said = done.stdout + done.stderr  # a dry run prints its errors on stdout
    assert "dataset 'site_a' has 2 site(s) ['north', 'south'] in column 'site' for 3 folds" in said
    assert not (tmp_path / "study" / "results").exists()


def test_radiograph_example_cross_validates_and_keeps_the_duplicate_pair_together(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "examples" / "xray.yaml").read_text())
    config["datasets"]["xray"]["patches"]["labels_csv"] = str(SHARED / "xray" / "labels.csv")
    done = snakemake(write_config(tmp_path, config), "--cores", "2")
    assert done.returncode == 0, done.stderr[-4000:]
    results = tmp_path / "results"
    leakage = json.loads((results / "splits" / "xray.leakage.json").read_text())
    assert leakage["ok"] and len(leakage["duplicate_items"]) == 1
    splits = pd.read_csv(results / "splits" / "xray.tsv", sep="\t")
    pair = splits[splits["item"].str.contains("PMC2584007_1752-1947-2-335-2", regex=False)]
    assert len(pair) == 2 and set(pair["split"]) == {"val"}
    metrics = pd.read_csv(results / "reports" / "xray" / "metrics.tsv", sep="\t")
    assert list(metrics["level"].unique()) == ["image", "patient"]
    images = metrics[metrics["level"] == "image"].set_index("split")
    assert images.at["val", "n"] == 10
    assert images.at["val", "accuracy"] >= 0.9
    val = images.loc["val"]  # 10 of 10 right gives no bootstrap interval, and says so
    assert val["accuracy_ci_low"] <= val["accuracy"] or val["accuracy_ci_method"].startswith("not estimable")
    assert (results / "models" / "xray" / "model.keras").is_file()
    assert len(pd.read_csv(results / "reports" / "xray" / "tsne.tsv", sep="\t")) == 77
    # 5-fold cross-validation of the 75 TRAIN and VAL images; the 2 TEST images stay out of every fold
    assert sorted(splits.loc[splits["split"] != "test", "fold"].unique()) == [0, 1, 2, 3, 4]
    assert (splits.loc[splits["split"] == "test", "fold"] == -1).all()
    assert pair["fold"].nunique() == 1
    oof = pd.read_csv(results / "crossval" / "xray" / "oof.tsv", sep="\t")
    assert len(oof) == 75 and oof["item"].is_unique and "TEST" not in "".join(oof["item"])
    crossval = pd.read_csv(results / "crossval" / "xray" / "metrics.tsv", sep="\t", dtype={"fold": str})
    crossval = crossval[crossval["level"] == "image"].set_index("fold")
    assert list(crossval.index) == ["0", "1", "2", "3", "4", "pooled", "mean"]
    for row in ("pooled", "mean"):
        assert_interval(crossval.loc[row], "accuracy")
    assert crossval.at["mean", "accuracy"] >= 0.9  # the figure the README states
