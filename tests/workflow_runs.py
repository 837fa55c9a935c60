"""Running the workflow in tests: a study folder as a user has it, and ``snakemake`` on it.

Shared by every test module that runs Snakemake (their fixtures build the studies).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT
from slidesnake.demo import demo_sheet, write_demo_slide
from slidesnake.tables import StoredTable

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


def declared_tables() -> list[StoredTable]:
    """Every stored table the library declares (each module's :class:`StoredTable` constants)."""
    import slidesnake

    found: dict[int, StoredTable] = {}
    for module in pkgutil.walk_packages(slidesnake.__path__, "slidesnake."):
        for value in vars(importlib.import_module(module.name)).values():
            if isinstance(value, StoredTable):
                found[id(value)] = value
    return list(found.values())


def _pattern(path: str) -> re.Pattern:
    """A declared path (``results/splits/{dataset}.tsv``) as a regular expression of the files it names."""
    parts = re.split(r"\{[^}]+\}", path)
    return re.compile("[^/]+".join(re.escape(part) for part in parts))


#: Tab-separated files under results/ that are not stored tables: Snakemake's benchmarks, the run log.
NOT_TABLES = ("results/benchmarks/", "results/logs/")


def check_stored_tables(workdir: Path) -> dict[str, int]:
    """Read every table a run wrote under ``workdir/results`` through the table its path declares (the
    most specific match), and return how many files each declared path matched. A file no declaration
    names, or one its owner cannot read (columns, kinds), fails the test."""
    patterns = [(table, path, _pattern(path)) for table in declared_tables() for path in table.paths]
    matched: dict[str, int] = {}
    for file in sorted((workdir / "results").rglob("*.tsv")):
        name = file.relative_to(workdir).as_posix()
        if name.startswith(NOT_TABLES):
            continue
        fits = [
            (len(re.sub(r"\{[^}]+\}", "", path)), path, table)
            for table, path, p in patterns
            if p.fullmatch(name)
        ]
        assert fits, f"{name}: no stored table declares it"
        _, path, table = max(fits, key=lambda fit: fit[0])
        table.read(file)
        matched[path] = matched.get(path, 0) + 1
    return matched
