"""The README's "Your first study" walkthrough, run as a user types it (in a home folder of its own)."""

import os
import re
import subprocess
import sys

import pandas as pd
import pytest
from workflow_runs import RUN_TIMEOUT_S

from conftest import ROOT

pytestmark = pytest.mark.workflow


def walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Your first study") : text.index("**Several sites.**")]
    return "\n".join(re.findall(r"```bash\n(.*?)```", section, flags=re.S))


def test_the_first_study_walkthrough_works_as_written(tmp_path):
    script = walkthrough()
    assert "snakemake" in script and "CMU-1.geojson" in script
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    study = tmp_path / "studies" / "first"
    for output in ("report.html", "qupath/CMU-1.geojson", "heatmaps/CMU-1.jpg", "reports/crc/summary.html"):
        assert (study / "results" / output).is_file(), output
    labels = pd.read_csv(study / "results" / "labels" / "crc" / "CMU-1.tsv", sep="\t", keep_default_na=False)
    assert {"tumor", "normal"} <= set(labels["label"])  # both hand-written regions label tiles
