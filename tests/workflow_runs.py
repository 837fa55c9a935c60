"""Running the workflow in tests: a study folder as a user has it, and ``snakemake`` on it.

Shared by every test module that runs Snakemake (their fixtures build the studies).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT
from slidesnake.demo import demo_sheet, write_demo_slide

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
#: A safety net only: a whole study takes minutes, longer on a slow CI machine running two test
#: modules side by side (make test runs two pytest-xdist workers).
RUN_TIMEOUT_S = 3600
#: The test study (.test/config: the 12 small demo slides the workflow generates itself).
TEST_STUDY = ROOT / ".test"


def write_config(workdir: Path, config: dict) -> Path:
    """A study folder ``workdir`` with ``config`` as its config/config.yaml."""
    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return workdir


def make_workdir(workdir: Path, sheet: Path, **overrides) -> Path:
    """A study folder as a user has it: the test study's config/config.yaml pointing at ``sheet``."""
    config = yaml.safe_load((TEST_STUDY / "config" / "config.yaml").read_text())
    config.update(slides=str(sheet), demo_dir=None, **overrides)
    return write_config(workdir, config)


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """``snakemake`` on the study folder ``workdir`` (the repository's workflow), its output captured."""
    command = [*SNAKEMAKE, "-s", str(ROOT / "workflow" / "Snakefile"), "--directory", str(workdir), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def small_demo_sheet(folder: Path, datasets: tuple[str, ...] = ("site_a", "site_b")) -> Path:
    """The small demo slides of ``datasets`` written into ``folder``, and their sheet (``slides.tsv``)."""
    demo = demo_sheet(folder, small=True)
    demo = demo[demo["dataset"].isin(datasets)]
    for row in demo.itertuples():
        write_demo_slide(row.path, row.annotations, row.slide_id, row.dataset, small=True)
    demo.to_csv(folder / "slides.tsv", sep="\t", index=False)
    return folder / "slides.tsv"
