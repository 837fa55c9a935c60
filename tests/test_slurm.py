"""The study through ``profiles/slurm`` on a real single-node SLURM, against a workstation run.

A six-slide study (site_a of the demo, its dataset in the GPU env) runs once with ``--cores 2`` and
once through the SLURM profile on the cluster of ``slurmcluster.py`` (no accounting daemon, so the
profile first stops with the option to add, then runs with it). Checked: every non-local job went
through sbatch with its resources (GPU for train and predict), the per-slide stages ran as group
jobs, the outputs are the same bytes as the workstation's, and a job killed by ``scancel`` is
reported and leaves nothing behind for the rerun that completes the study.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from slurmcluster import run, single_node_cluster
from workflow_runs import RUN_TIMEOUT_S, SNAKEMAKE, make_workdir

from conftest import ROOT
from slidesnake.demo import demo_sheet, write_demo_slide

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.skipif(os.geteuid() != 0, reason="starting slurmctld, slurmd and munged needs root"),
]
PROFILE = ROOT / "profiles" / "slurm"
#: What the test cluster allows a group job (2 CPUs, 20 GB on the node).
CLUSTER_LIMITS = ["--cores", "2", "--resources", "mem_mb=8000"]
#: This cluster's jobs take seconds: the first status poll 2 s after a submission (the profile's 10 s
#: is for real clusters), and each later one 10 s further apart while none finishes (the plugin's).
FAST_POLLS = ["--slurm-init-seconds-before-status-checks", "2"]
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+)")


def _sheet(folder: Path) -> Path:
    demo = demo_sheet(folder, small=True)
    demo = demo[demo["dataset"] == "site_a"].copy()
    for row in demo.itertuples():
        write_demo_slide(row.path, row.annotations, row.slide_id, "site_a", small=True)
    demo.to_csv(folder / "slides.tsv", sep="\t", index=False)
    return folder / "slides.tsv"


def _dataset() -> dict:
    labels = {
        "source": "annotations",
        "classes": ["normal", "tumor"],
        "annotation_classes": {"Tumor": "tumor"},
        "unannotated": "normal",
    }
    return {"labels": labels, "positive_class": "tumor", "env": "tensorflow-gpu", "gpus": 1}


def _snakemake(workdir: Path, *args: str, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    command = [*SNAKEMAKE, "-s", str(ROOT / "workflow" / "Snakefile"), "--directory", str(workdir), *args]
    return run(*command, timeout=timeout)


def _on_slurm(workdir: Path, *args: str) -> list[str]:
    return [
        *SNAKEMAKE,
        "-s",
        str(ROOT / "workflow" / "Snakefile"),
        "--directory",
        str(workdir),
        "--workflow-profile",
        str(PROFILE),
        *CLUSTER_LIMITS,
        *FAST_POLLS,
        "--slurm-status-command",
        "squeue",
        "--slurm-keep-successful-logs",
        *args,
    ]


def _leftovers(workdir: Path) -> list[Path]:
    return [p for p in (workdir / "results").rglob("*") if ".tmp" in p.name]


def _weights(model: Path) -> dict[str, np.ndarray]:
    """The weight arrays inside a .keras file (not the zip, whose metadata holds the save date)."""
    with zipfile.ZipFile(model) as archive, archive.open("model.weights.h5") as raw, h5py.File(raw) as h5:
        names: list[str] = []
        h5.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        return {name: h5[name][()] for name in names}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with single_node_cluster(tmp_path_factory.mktemp("slurm")) as folder:
        yield folder


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The study run on the workstation and through the SLURM profile (with the first, refused try)."""
    folder = tmp_path_factory.mktemp("study")
    sheet = _sheet(folder / "slides")
    local = make_workdir(folder / "local", sheet, datasets={"site_a": _dataset()}, cohorts={})
    done = _snakemake(local, "--cores", "2")
    assert done.returncode == 0, done.stderr[-4000:]
    slurm = make_workdir(folder / "slurm", sheet, datasets={"site_a": _dataset()}, cohorts={})
    start = time.monotonic()
    refused = _snakemake(slurm, "--workflow-profile", str(PROFILE), *CLUSTER_LIMITS, timeout=120)
    refused_s = time.monotonic() - start
    refused_logs = list((slurm / ".snakemake" / "slurm_logs").glob("**/*.log"))
    start = time.monotonic()
    done = run(*_on_slurm(slurm), timeout=RUN_TIMEOUT_S)
    print(f"SLURM run: {time.monotonic() - start:.0f} s")
    assert done.returncode == 0, done.stderr[-6000:]
    return {
        "local": local,
        "slurm": slurm,
        "refused": refused,
        "refused_s": refused_s,
        "refused_logs": refused_logs,
        "log": done.stderr,
    }


def test_without_accounting_the_profile_stops_at_once_with_the_option_to_add(runs):
    refused = runs["refused"]
    assert refused.returncode != 0
    assert runs["refused_s"] < 60
    lines = [line for line in refused.stderr.splitlines() if "--slurm-status-command squeue" in line]
    assert len(lines) == 1, refused.stderr[-3000:]
    assert "sacct" in lines[0]
    assert lines[0].startswith("Error: SLURM job states cannot be read with sacct")
    assert "Traceback" not in refused.stderr
    assert runs["refused_logs"] == []  # nothing was submitted


def _jobs(ids: list[str]) -> dict[str, str]:
    """``scontrol show job`` of these jobs, one line each (the cluster keeps them for MinJobAge)."""
    shown = run("scontrol", "show", "job", "-o", timeout=20).stdout
    jobs = {re.search(r"JobId=(\d+)", line).group(1): line for line in shown.splitlines() if "JobId=" in line}
    return {job_id: line for job_id, line in jobs.items() if job_id in ids}


def test_every_job_went_through_sbatch_with_its_resources(runs):
    ids = SUBMITTED.findall(runs["log"])
    assert ids, runs["log"][-3000:]
    print(f"SLURM job ids: {', '.join(ids)}")
    logdir = runs["slurm"] / ".snakemake" / "slurm_logs"
    # slurm_logs/<rule_NAME or group_NAME_RULES>/<wildcards>/<job id>.log
    kind = {p.stem: p.relative_to(logdir).parts[0] for p in logdir.rglob("*.log")}
    assert set(ids) <= set(kind)
    jobs = _jobs(ids)
    assert set(jobs) == set(ids)
    by_kind: dict[str, list[str]] = {}
    for job_id, line in jobs.items():
        assert "JobState=COMPLETED" in line, line
        by_kind.setdefault(kind[job_id], []).append(line)
    print("SLURM jobs by rule or group:", {k: len(v) for k, v in sorted(by_kind.items())})
    groups = {k.split("_")[1]: v for k, v in by_kind.items() if k.startswith("group_")}
    assert {"slide", "predict", "study", "report"} <= set(groups), sorted(by_kind)
    # six slides' ingest and label_tiles: one cluster job, not 12; one for predict
    assert len(groups["slide"]) == 1
    assert len(groups["predict"]) == 1
    for line in by_kind["rule_train"] + groups["predict"]:
        assert "gres:gpu:1" in line or "gres/gpu=1" in line, line
    (train,) = by_kind["rule_train"]
    # the profile's 16000 MB for train, capped by this cluster's --resources mem_mb=8000
    assert "mem=8000M" in train, train
    for line in groups["slide"] + groups["study"]:
        assert "gpu" not in line, line
    (slides,) = groups["slide"]
    # 6 slides' ingest jobs (2 threads, 4000 MB each) one after another on the group's 2 cores
    assert "mem=4000M" in slides, slides


def test_outputs_are_the_workstation_bytes(runs):
    local, slurm = runs["local"] / "results", runs["slurm"] / "results"
    for folder in ("splits", "tiles", "maps", "heatmaps", "labels"):
        assert _files(local / folder) == _files(slurm / folder), folder
    assert _files(local / "reports" / "site_a").keys() == _files(slurm / "reports" / "site_a").keys()
    for name in ("metrics.tsv", "scores.tsv"):
        path = Path("reports") / "site_a" / name
        if (local / path).exists():
            assert (local / path).read_bytes() == (slurm / path).read_bytes(), name
    model = Path("models") / "site_a" / "model.keras"
    ours, theirs = _weights(local / model), _weights(slurm / model)
    assert ours.keys() == theirs.keys()
    assert all(np.array_equal(ours[k], theirs[k]) for k in ours)


def test_a_job_cancelled_by_scancel_is_reported_and_the_rerun_completes(runs):
    slurm = runs["slurm"]
    tsne = slurm / "results" / "reports" / "site_a" / "tsne.png"
    expected = tsne.read_bytes()
    tsne.unlink()
    process = subprocess.Popen(_on_slurm(slurm), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        cancelled = None
        deadline = time.monotonic() + 900
        while cancelled is None and time.monotonic() < deadline:
            queue = run("squeue", "-h", "-o", "%i %T %k", timeout=10).stdout.splitlines()
            running = [line.split()[0] for line in queue if " RUNNING rule_tsne" in line]
            if running:
                time.sleep(4)  # inside the job: TensorFlow loaded, the embedding under way
                run("scancel", running[0], timeout=10)
                cancelled = running[0]
            time.sleep(0.5)
        assert cancelled, "the tsne job never ran"
        output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        process.kill()
    assert process.returncode != 0
    assert re.search(rf"SLURM-job '{cancelled}' failed, SLURM status is: 'CANCELLED'", output), output[-3000:]
    assert not tsne.exists()
    assert _leftovers(slurm) == []
    done = run(*_on_slurm(slurm), timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-4000:]
    assert _leftovers(slurm) == []
    assert tsne.read_bytes() == expected
