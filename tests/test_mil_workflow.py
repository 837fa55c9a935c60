"""Slide-level learning (model kind mil) in real Snakemake runs: ten small site_c slides with the demo's
trait as slide labels, a small Keras encoder, 2-fold cross-validation with 2 seeds. Every slide is
predicted out of fold once per pooling and seed, the metrics, the attention check, every slide's attention
map, QuPath tiles and montage, the page and the study's headline come out; a SIGTERM during training leaves
no model and no table; a patient table naming a patient the sheet lacks, and a slide without a label, stop
the run before any job, naming the row."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from encoder_models import small_cnn_files
from workflow_runs import check_stored_tables, make_workdir, snakemake

from slidesnake.demo import demo_sheet, write_demo_slide
from slidesnake.evaluation import PERFORMANCE_TABLE
from slidesnake.metrics import METRICS_TABLE
from slidesnake.mil.evaluation import ATTENTION_CHECK_TABLE, MIL_METRICS_TABLE
from slidesnake.mil.outputs import MIL_PREDICTIONS_TABLE
from slidesnake.splits import SPLITS_TABLE

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.filterwarnings("ignore:In the future `np.object`:FutureWarning"),
]

SLIDES = [f"C{k:02d}" for k in range(1, 11)]


def _config(models) -> dict:
    encoder = {
        "source": "keras_file",
        "file": "models/small.keras",
        "layer": "features",
        "normalization": "imagenet",
        "sha256": {"models/small.keras": models.digests["small.keras"]},
        "input_size": 64,
        "mpp": 0.5,
        "licence": "MIT",
        "gated": False,
    }
    dataset = {
        "labels": {"source": "slide", "classes": ["classic", "vesicular"]},
        "positive_class": "vesicular",
        "model": {"kind": "mil", "encoder": "small_keras"},
    }
    # 30 epochs each (no early stop before): the SIGTERM test needs training that lasts seconds, not one
    mil = {"folds": 2, "seeds": 2, "epochs": 30, "min_epochs": 30, "patience": 2}
    mil |= {"hidden": 16, "attention": 8}
    mil["evidence"] = ["Tumor"]
    return {"datasets": {"site_c": dataset}, "cohorts": {}, "encoders": {"small_keras": encoder}, "mil": mil}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mil")
    sheet = demo_sheet(folder).set_index("slide_id").loc[SLIDES].reset_index()
    for row in sheet.itertuples():
        write_demo_slide(row.path, row.annotations, row.slide_id, row.dataset, small=True)
    sheet.to_csv(folder / "slides.tsv", sep="\t", index=False)
    workdir = folder / "run"
    (workdir / "models").mkdir(parents=True)
    models = small_cnn_files(workdir / "models")
    make_workdir(workdir, folder / "slides.tsv", **_config(models))
    done = snakemake(workdir, "--cores", "2", "--skip-script-cleanup")
    assert done.returncode == 0, done.stderr[-5000:]
    assert "results/reports/{dataset}/attention_check.tsv" in check_stored_tables(workdir)
    return workdir, sheet, models


def test_every_slide_is_predicted_out_of_fold_by_each_pooling_and_seed(study):
    workdir, sheet, _ = study
    predictions = MIL_PREDICTIONS_TABLE.read(workdir / "results/mil/site_c/predictions.tsv")
    splits = SPLITS_TABLE.read(workdir / "results/splits/site_c.tsv")
    assert set(predictions["split"]) == {"oof"}
    counts = predictions.groupby(["bag", "pooling"])["seed"].nunique()
    assert (counts == 2).all() and set(counts.index.get_level_values(0)) == set(SLIDES)
    fold_of = splits.set_index("item")["fold"]
    assert (predictions["fold"] == predictions["bag"].map(fold_of)).all()  # out of fold: its own fold
    assert set(fold_of) == {0, 1}
    assert (predictions["label"] == predictions["bag"].map(sheet.set_index("slide_id")["label"])).all()
    networks = sorted(p.name for p in (workdir / "results/models/site_c/mil").glob("*.keras"))
    assert len(networks) == 2 * 2 * 2 and "fold0_attention_seed1.keras" in networks


def test_metrics_attention_outputs_and_pages(study):
    workdir, sheet, _ = study
    results = workdir / "results"
    metrics = METRICS_TABLE.read(results / "reports/site_c/metrics.tsv")
    assert set(metrics["level"]) == {"slide", "patient"} and set(metrics["split"]) == {"oof"}
    assert (metrics["n"] == len(SLIDES)).all()
    mil = MIL_METRICS_TABLE.read(results / "reports/site_c/mil_metrics.tsv")
    assert set(mil["pooling"]) == {"attention", "mean"} and (mil["seeds"] == 2).all()
    slide_rows = mil[mil["level"] == "slide"]
    assert (slide_rows["seed_auc_min"] <= slide_rows["seed_auc_max"]).all()
    check = ATTENTION_CHECK_TABLE.read(results / "reports/site_c/attention_check.tsv")
    positives = set(sheet.loc[sheet["label"] == "vesicular", "slide_id"])
    assert set(check["slide_id"]) == positives | {"mean over slides"}
    for slide in SLIDES:
        folder = results / "attention/site_c"
        assert (folder / f"{slide}.jpg").stat().st_size > 10_000
        assert (folder / f"{slide}.tiles.jpg").stat().st_size > 5_000
        tiles = json.loads((folder / f"{slide}.geojson").read_text())["features"]
        assert tiles and {"attention", "attention percentile"} <= set(tiles[0]["properties"]["measurements"])
        percentiles = [t["properties"]["measurements"]["attention percentile"] for t in tiles]
        assert max(percentiles) == 100.0 and min(percentiles) > 0
    page = (results / "reports/site_c/summary.html").read_text()
    assert "slide-level learning (MIL)" in page and "Does attention look where the annotations are?" in page
    study_page = (results / "reports/study.html").read_text()
    assert "site_c (out of fold)" in study_page
    performance = PERFORMANCE_TABLE.read(results / "reports/performance.tsv")
    assert set(performance.loc[performance["evaluated_on"] == "site_c", "split"]) == {"oof"}
    assert not (results / "predictions").exists() or not list((results / "predictions").glob("C*.tsv"))


def test_a_sigterm_during_training_leaves_no_model_and_no_table(study):
    workdir, _, _ = study
    scripts = sorted((workdir / ".snakemake" / "scripts").glob("*.train_mil.py"))
    assert scripts
    outputs = [workdir / "results/models/site_c/mil"] + [
        workdir / f"results/mil/site_c/{name}.tsv" for name in ("predictions", "attention", "history")
    ]
    for output in outputs:
        subprocess.run(["rm", "-rf", str(output)], check=True)
    job = subprocess.Popen(
        [sys.executable, str(scripts[-1])], cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    # the first of its 8 networks saved into the temporary models folder: partial outputs exist
    while not list((workdir / "results/models/site_c").glob(".mil.*.tmp/*.keras")):
        assert time.monotonic() < deadline and job.poll() is None
        time.sleep(0.05)
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=120)
    assert job.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert b"stopped by SIGTERM; its temporary outputs were removed" in stderr
    assert not [p for p in outputs if p.exists()]
    assert not [p for p in (workdir / "results").rglob("*") if ".tmp" in p.name]


def _dry_run(workdir: Path) -> subprocess.CompletedProcess:
    return snakemake(workdir, "-n", "--cores", "1")


def test_a_patient_table_or_a_missing_label_stops_before_any_job(study, tmp_path):
    study_dir, sheet, models = study
    config = _config(models)
    patients = {"source": "patients", "table": "patients.csv", "column": "trait"}
    config["datasets"]["site_c"]["labels"] |= patients
    config["mil"]["bag"] = "patient"
    table = pd.DataFrame({"patient_id": sheet["patient_id"], "trait": sheet["label"]})
    bad = pd.concat([table, pd.DataFrame({"patient_id": ["PX9"], "trait": ["classic"]})])
    workdir = tmp_path / "patients"
    shutil.copytree(study_dir / "models", workdir / "models")  # the same encoder file and digest
    unlabelled = sheet.drop(columns="label")
    unlabelled.to_csv(tmp_path / "slides.tsv", sep="\t", index=False)
    make_workdir(workdir, tmp_path / "slides.tsv", **config)
    bad.to_csv(workdir / "patients.csv", index=False)
    done = _dry_run(workdir)
    assert done.returncode != 0  # a dry run prints its errors on stdout
    assert "patients not in the sheet's dataset 'site_c': line 12 ('PX9')" in done.stdout + done.stderr
    table.to_csv(workdir / "patients.csv", index=False)
    done = _dry_run(workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "train_mil" in done.stdout
    # a slide of a slide-label MIL dataset without its label
    missing = sheet.copy()
    missing.loc[3, "label"] = ""
    missing.to_csv(tmp_path / "slides.tsv", sep="\t", index=False)
    workdir = tmp_path / "unlabelled"
    shutil.copytree(study_dir / "models", workdir / "models")
    make_workdir(workdir, tmp_path / "slides.tsv", **_config(models))
    done = _dry_run(workdir)
    said = done.stdout + done.stderr
    assert done.returncode != 0
    assert "'C04' (line 5)" in said and "column 'label'" in said
