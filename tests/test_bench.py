"""The benchmarks still run: each script of benchmarks/ in its quick mode, and the figures it prints.

``make bench`` is too heavy to run on every commit, so a rule function or library call whose
signature changed used to break it unnoticed. Here every benchmark runs with ``--quick`` (a tiny
slide, a 20-slide study, a few training steps: the same code on less data) as ``make bench`` runs
it, in a child process, and its ``bench <name>:`` line must carry every figure, finite and where it
must be, positive. The figures themselves are not checked: a quick run measures nothing.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CMU, ROOT

pytestmark = pytest.mark.workflow

BENCHMARKS = ROOT / "benchmarks"

#: The scripts tested here (``common.py`` is their shared code, not a benchmark).
TESTED = {"tiling.py", "predict.py", "features.py", "dag.py", "training.py", "gigapixel.py"}


def run_bench(script: str, *args: str) -> str:
    """Run ``benchmarks/<script> --quick <args>``, as ``make bench`` runs it; its standard output."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{script} --quick failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done.stdout


def bench_line(stdout: str, name: str, keys: list[str]) -> dict[str, str]:
    """The figures of the last ``bench <name>:`` line, which must have exactly ``keys``, in that order."""
    lines = [line for line in stdout.splitlines() if line.startswith(f"bench {name}: ")]
    assert lines, f"no 'bench {name}:' line in:\n{stdout}"
    print(lines[-1])  # shown by pytest -rA
    pairs = [field.split("=", 1) for field in lines[-1].removeprefix(f"bench {name}: ").split()]
    assert all(len(pair) == 2 for pair in pairs), f"not key=value pairs: {lines[-1]!r}"
    assert [key for key, _ in pairs] == keys, lines[-1]
    return dict(pairs)


def positive(figures: dict[str, str], *keys: str) -> None:
    """The figures are finite numbers above zero."""
    for key in keys:
        value = float(figures[key])
        assert math.isfinite(value) and value > 0, f"{key}={figures[key]}"


def whole(figures: dict[str, str], key: str) -> int:
    """The figure is a whole number above zero (a count)."""
    assert re.fullmatch(r"[1-9]\d*", figures[key]), f"{key}={figures[key]}"
    return int(figures[key])


def test_every_benchmark_is_tested_and_make_bench_runs_them():
    scripts = {path.name for path in BENCHMARKS.glob("*.py")} - {"common.py"}
    assert scripts == TESTED
    bench = (ROOT / "Makefile").read_text().split("\nbench:", 1)[1].split("\n\n", 1)[0]
    ran = set(re.findall(r"benchmarks/(\w+\.py)", bench))
    assert ran == TESTED - {"gigapixel.py"}  # gigapixel.py: by hand (benchmarks/README.md)


def test_tiling(tmp_path: Path):
    stdout = run_bench("tiling.py", "--out", str(tmp_path))
    keys = ["tiling_vs_decode", "tiling_vs_needed_decode", "baseline_vs_tiling", "rss_gb", "files_per_store"]
    figures = bench_line(stdout, "tiling", keys)
    positive(figures, *keys[:-1])
    whole(figures, "files_per_store")
    assert not (tmp_path / "work").exists()  # its stores removed


def test_predict(tmp_path: Path):
    stdout = run_bench("predict.py", "--out", str(tmp_path))
    keys = ["predict_vs_forward", "tiles_per_s", "rss_gb"]
    positive(bench_line(stdout, "predict", keys), *keys)


def test_features(tmp_path: Path):
    stdout = run_bench("features.py", "--out", str(tmp_path))
    figures = bench_line(stdout, "features", ["encoder", "features_vs_forward", "tiles_per_s", "rss_gb"])
    assert figures["encoder"] == "densenet121"
    positive(figures, "features_vs_forward", "tiles_per_s", "rss_gb")


def test_dag(tmp_path: Path):
    assert CMU.exists()  # the study's slides are links to it
    stdout = run_bench("dag.py", "--work", str(tmp_path / "dag"))
    keys = ["slides", "dryrun_s", "dryrun_vs_floor", "rss_gb"]
    figures = bench_line(stdout, "dag", keys)
    assert whole(figures, "slides") == 20
    positive(figures, *keys[1:])


def test_training(tmp_path: Path):
    stdout = run_bench("training.py", "--work", str(tmp_path))
    keys = ["pipeline_vs_memory", "pipeline_img_s"]
    positive(bench_line(stdout, "training", keys), *keys)


def test_gigapixel(tmp_path: Path):
    stdout = run_bench("gigapixel.py", "--out", str(tmp_path))
    stages = ["slide_info_s", "tissue_s", "tile_s", "predict_s"]
    figures = bench_line(stdout, "gigapixel", ["slide", "tiles", "max_rss_gb", *stages])
    assert figures["slide"] == "2000x1500"
    whole(figures, "tiles")
    positive(figures, "max_rss_gb", "predict_s")
    for stage in stages:  # one decimal: a stage of a tiny slide can take "0.0" s
        assert math.isfinite(float(figures[stage])) and float(figures[stage]) >= 0, figures
