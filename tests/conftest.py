"""Shared fixtures: paths of the real data in ../shared/data and a small generated demo study."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SLIDES = SHARED / "slides"
CMU = SLIDES / "CMU-1-Small-Region.svs"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo study (12 slides, 600 x 400 um each) generated once per test session."""
    from slidesnake.demo import write_demo_study

    folder = tmp_path_factory.mktemp("study")
    write_demo_study(folder, small=True)
    return folder
