"""Killed jobs leave nothing behind: a real SIGTERM and a real kill -9 of a running ingest job.

The slide is a 12,000 x 10,000 px real-tissue SVS (../shared/tools/make_bench_slide.py), so its tile
job runs for some seconds. Each test starts ``snakemake`` on it, waits until the job writes chunks
into its temporary store, signals the job's process, and checks what is left; then a rerun
completes with no ``*.tmp`` anywhere under ``results/``.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_workflow import SNAKEMAKE, make_workdir

from conftest import ROOT
from slidesnake.store import TileStore

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
