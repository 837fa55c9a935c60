"""Killed jobs leave nothing behind: a real SIGTERM and a real kill -9 of a running ingest job.

The slide is a 12,000 x 10,000 px real-tissue SVS (../shared/tools/make_bench_slide.py), so its tile
job runs for some seconds. Each test starts ``snakemake`` on it, waits until the job writes chunks
into its temporary store, signals the job's process, and checks what is left; then a rerun
completes with no ``*.tmp`` anywhere under ``results/``.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from workflow_runs import SNAKEMAKE, make_workdir

from conftest import ROOT
from slidesnake.demo import demo_sheet, write_demo_slide
from slidesnake.io import read_json
from slidesnake.store import TileStore
from slidesnake.store.maps import read_probability_map

pytestmark = pytest.mark.workflow

MAKE_SLIDE = ROOT.parent / "shared" / "tools" / "make_bench_slide.py"
TARGET = "results/tiles/big.zarr"


@pytest.fixture(scope="module")
def big_sheet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    slide = folder / "big.svs"
    made = [sys.executable, str(MAKE_SLIDE), str(slide), "--width", "12000", "--height", "10000"]
    subprocess.run(made, check=True, capture_output=True, timeout=300)
    (folder / "big.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    row = {"slide_id": "big", "patient_id": "P1", "dataset": "site_a", "path": str(slide)}
    pd.DataFrame([{**row, "annotations": str(folder / "big.geojson")}]).to_csv(
        folder / "slides.tsv", sep="\t", index=False
    )
    return folder / "slides.tsv"


def _workdir(tmp_path, sheet):
    config = {"datasets": {"site_a": _dataset()}, "cohorts": {}, "tiling": {"tile_size": 128}}
    return make_workdir(tmp_path / "study", sheet, **config)


def _dataset():
    labels = {"source": "annotations", "classes": ["normal", "tumor"], "unannotated": "normal"}
    return {"labels": labels, "positive_class": "tumor"}


def _start(workdir: Path) -> subprocess.Popen:
    command = [*SNAKEMAKE, "-s", str(ROOT / "workflow" / "Snakefile"), "--directory", str(workdir)]
    return subprocess.Popen(
        [*command, "--cores", "2", TARGET], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _temporaries(workdir: Path) -> list[Path]:
    return [p for p in (workdir / "results").rglob("*") if ".tmp" in p.name]


def _tile_job(workdir: Path, timeout: float = 240) -> int:
    """The process id of the running ingest job, once it has written chunks into its temporary store."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stores = list((workdir / "results" / "tiles").glob(".big.zarr.*.tmp*"))
        if stores and any(p.is_file() for p in (stores[0] / "image").rglob("*")):
            return int(stores[0].name.split(".")[3])  # .big.zarr.<pid>.tmp: the job's own process
        time.sleep(0.05)
    pytest.fail("the ingest job never wrote into a temporary store")


def _rerun_is_clean(workdir: Path) -> None:
    command = [*SNAKEMAKE, "-s", str(ROOT / "workflow" / "Snakefile"), "--directory", str(workdir)]
    done = subprocess.run([*command, "--cores", "2", TARGET], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not _temporaries(workdir)
    assert len(TileStore(workdir / TARGET).index) > 500


def test_sigterm_removes_the_partial_store(tmp_path, big_sheet):
    workdir = _workdir(tmp_path, big_sheet)
    run = _start(workdir)
    os.kill(_tile_job(workdir), signal.SIGTERM)
    output, _ = run.communicate(timeout=120)
    assert run.returncode != 0
    log = (workdir / "results" / "logs" / "ingest" / "big.log").read_text()
    assert "stopped by SIGTERM; its temporary outputs were removed" in log
    assert not _temporaries(workdir), _temporaries(workdir)
    assert not (workdir / TARGET).exists()
    _rerun_is_clean(workdir)


def test_kill_9_debris_is_removed_by_the_rerun(tmp_path, big_sheet):
    workdir = _workdir(tmp_path, big_sheet)
    run = _start(workdir)
    os.kill(_tile_job(workdir), signal.SIGKILL)
    run.communicate(timeout=120)
    assert run.returncode != 0
    assert _temporaries(workdir)  # nothing can clean up after kill -9 ...
    _rerun_is_clean(workdir)  # ... but the next job writing that output does
    log = (workdir / "results" / "logs" / "ingest" / "big.log").read_text()
    assert "left by a job that was killed" in log


# Repeated real SIGTERMs at random moments of a real job. Snakemake runs a rule's script as a
# wrapper file holding the job's pickled arguments; --skip-script-cleanup keeps it, so the very
# job can be started again and again without planning a workflow each time.

#: Interrupted runs each test needs, and the most tries it makes (a signal after the job ended
#: interrupts nothing).
INTERRUPTIONS, TRIES = 20, 40


def _kept_script(workdir: Path, rule: str) -> Path:
    scripts = sorted((workdir / ".snakemake" / "scripts").glob(f"*.{rule}.py"))
    assert scripts, f"no kept {rule} script"
    return scripts[-1]


def _signal_at_random_moments(workdir, script, outputs, complete, seed) -> list[float]:
    """Run the job's script over and over, SIGTERM it at a random moment, check what it left.

    Each run starts without the job's outputs (as Snakemake starts a job). A run the signal
    reached must exit with 143 (128 + SIGTERM: our handler) or be killed by the signal (it came
    before the handler was set), log that its temporary outputs were removed (when its handler
    ran), and leave no temporary file or folder; every output that exists must be complete.
    Returns the moments (seconds after the start) of the interrupted runs.
    """
    started = time.monotonic()
    whole = subprocess.run([sys.executable, str(script)], cwd=workdir, capture_output=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-3000:]
    duration = time.monotonic() - started
    rng = np.random.default_rng(seed)
    moments = []
    for _ in range(TRIES):
        for output in outputs:
            shutil.rmtree(output, ignore_errors=True) if output.is_dir() else output.unlink(missing_ok=True)
        delay = float(rng.uniform(0.2, 1.0) * duration)
        job = subprocess.Popen(
            [sys.executable, str(script)], cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        time.sleep(delay)
        job.send_signal(signal.SIGTERM)
        _, stderr = job.communicate(timeout=300)
        assert not _temporaries(workdir), (delay, _temporaries(workdir))
        for output in outputs:
            if output.exists():
                complete(output)
        if job.returncode == 0:
            continue  # the job had ended
        assert job.returncode in (128 + signal.SIGTERM, -signal.SIGTERM), (delay, stderr[-3000:])
        if job.returncode > 0:
            assert b"stopped by SIGTERM; its temporary outputs were removed" in stderr, stderr[-3000:]
            assert b"Traceback" not in stderr, stderr[-3000:]
        moments.append(delay)
        if len(moments) == INTERRUPTIONS:
            return moments
    pytest.fail(f"only {len(moments)} of {TRIES} runs were interrupted (the job takes {duration:.1f} s)")


def test_repeated_sigterms_during_ingest_leave_nothing_half_written(tmp_path, big_sheet):
    workdir = _workdir(tmp_path, big_sheet)
    command = [*SNAKEMAKE, "-s", str(ROOT / "workflow" / "Snakefile"), "--directory", str(workdir)]
    done = subprocess.run(
        [*command, "--cores", "2", "--skip-script-cleanup", TARGET],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = workdir / "results"
    outputs = [results / "slides" / "big", workdir / TARGET]
    moments = _signal_at_random_moments(
        workdir,
        _kept_script(workdir, "ingest"),
        outputs,
        lambda output: TileStore(output).index if output.suffix == ".zarr" else None,
        seed=34,
    )
    assert len(moments) == INTERRUPTIONS


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    """Site_a's six small demo slides trained on and A01 predicted, its predict script kept."""
    folder = tmp_path_factory.mktemp("predicted")
    demo = demo_sheet(folder, small=True)
    demo = demo[demo["dataset"] == "site_a"].copy()
    for row in demo.itertuples():
        write_demo_slide(row.path, row.annotations, row.slide_id, "site_a", small=True)
    demo.to_csv(folder / "slides.tsv", sep="\t", index=False)
    dataset = _dataset()
    dataset["labels"]["annotation_classes"] = {"Tumor": "tumor"}
    workdir = make_workdir(folder / "run", folder / "slides.tsv", datasets={"site_a": dataset}, cohorts={})
    command = [*SNAKEMAKE, "-s", str(ROOT / "workflow" / "Snakefile"), "--directory", str(workdir)]
    done = subprocess.run(
        [*command, "--cores", "2", "--skip-script-cleanup", "results/predictions/A01.tsv"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


def _complete_prediction(output: Path) -> None:
    if output.suffix == ".zarr":
        grid, attrs = read_probability_map(output)
        assert grid.ndim == 3 and attrs["slide_id"] == "A01"
    elif output.suffix == ".json":
        assert read_json(output)["slide_id"] == "A01"
    elif output.suffix == ".tsv":
        assert len(pd.read_csv(output, sep="\t")) > 0
    else:
        assert output.stat().st_size > 0


def test_repeated_sigterms_during_predict_leave_nothing_half_written(predicted):
    results = predicted / "results"
    outputs = [
        results / "predictions" / "A01.tsv",
        results / "predictions" / "A01.scores.json",
        results / "maps" / "A01.zarr",
        results / "heatmaps" / "A01.jpg",
        results / "classmaps" / "A01.jpg",
        results / "qupath" / "A01.geojson",
        results / "overlays" / "A01.ome.tif",
    ]
    moments = _signal_at_random_moments(
        predicted, _kept_script(predicted, "predict"), outputs, _complete_prediction, seed=35
    )
    assert len(moments) == INTERRUPTIONS
