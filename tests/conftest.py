"""Shared fixtures: the real data in ../shared/data, the validated default config, a small demo study."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SLIDES = SHARED / "slides"
CMU = SLIDES / "CMU-1-Small-Region.svs"

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: The modules that run whole studies through Snakemake, longest first (SLURM's, with its waits
#: between status polls). ``make test`` hands whole modules to two pytest-xdist workers in
#: collection order; starting these first lets the short modules fill in beside them.
LONGEST_FIRST = (
    "test_slurm.py",
    "test_workflow.py",
    "test_crossval.py",
    "test_bad_slides.py",
    "test_ids_workflow.py",
    "test_probe_workflow.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the tests of :data:`LONGEST_FIRST` first, in that order (a stable sort: the rest as found)."""
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def validated_config(config: dict | None = None) -> dict:
    """A config as the workflow sees it: validated against the schema, every default filled in.

    Without an argument, the committed demo config (config/config.yaml).
    """
    from slidesnake.config import validate_config

    if config is None:
        config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config = copy.deepcopy(config)
    validate_config(config, SCHEMA)
    return config


def defaults(section: str) -> dict:
    """One section of the default config, with the schema's defaults (e.g. ``defaults("tissue")``)."""
    return validated_config()[section]


@pytest.fixture(scope="session")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo study (12 slides, 600 x 400 um each) generated once per test session."""
    from slidesnake.demo import write_demo_study

    folder = tmp_path_factory.mktemp("study")
    write_demo_study(folder, small=True)
    return folder
