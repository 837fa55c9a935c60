"""Provenance of a study run: software, code state, machine, command, config, checksums of every input."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .checksums import file_sha256
from .io import write_json

#: The longest uncommitted diff kept in the provenance (characters); a longer one is cut, its checksum kept.
MAX_DIFF = 200_000


def installed_packages() -> dict[str, str]:
    """Every installed Python distribution and its version, by normalized name (PEP 503), sorted."""
    found = {
        re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower(): dist.version  # e.g. tensorflow-cpu
        for dist in metadata.distributions()
        if dist.metadata["Name"]
    }
    return dict(sorted(found.items()))


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what :mod:`platform` says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


#: What the results are made by: uncommitted changes here make a run "dirty" (the README, tests do not).
CODE_PATHS = ("scripts", "workflow", "envs", "profiles")


def git_state(folder: str | Path, paths: Sequence[str] = CODE_PATHS) -> dict:
    """Commit of the git checkout holding ``folder``, whether its code has uncommitted changes, and those.

    ``paths`` (relative to the checkout's top) are the code whose changes count.

    Returns
    -------
    dict
        ``commit`` (None outside git), ``dirty``, ``diff`` (``git diff HEAD``, cut at :data:`MAX_DIFF`
        characters), ``diff_sha256`` and ``untracked`` (files git does not know, not ignored).
    """

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=False)
        return done.stdout if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD").strip()
    top = git("rev-parse", "--show-toplevel").strip()
    paths = [str(Path(top) / path) for path in paths] if top else []
    if not commit:
        return {"commit": None, "dirty": None, "diff": "", "diff_sha256": None, "untracked": []}
    diff = git("diff", "HEAD", "--", *paths)
    untracked = git("ls-files", "--others", "--exclude-standard", "--", *paths).splitlines()
    return {
        "commit": commit,
        "dirty": bool(diff or untracked),
        "diff": diff[:MAX_DIFF],
        "diff_sha256": hashlib.sha256(diff.encode()).hexdigest(),
        "untracked": untracked,
    }


def run_state(workflow_dir: str | Path) -> dict:
    """What a run's results depend on beyond config and inputs: the code's commit and diff, the packages.

    The workflow passes it to rule ``provenance`` as a param, so a new commit, an edit or an upgraded
    package writes the provenance afresh.
    """
    git = git_state(workflow_dir)
    packages = json.dumps(installed_packages(), sort_keys=True)
    return {
        "commit": git["commit"],
        "diff_sha256": git["diff_sha256"],
        "untracked": git["untracked"],
        "packages_sha256": hashlib.sha256(packages.encode()).hexdigest(),
    }


def log_run(path: str | Path, *, command: Sequence[str], workflow_dir: str | Path) -> None:
    """Append one line per run to the study's run log (time, host, user, commit, command line).

    Parameters
    ----------
    path : str or Path
        The log, ``results/logs/runs.tsv``.
    command : sequence of str
        The command line of the run (``sys.argv`` of Snakemake).
    workflow_dir : str or Path
        The workflow, for its commit.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    git = git_state(workflow_dir)
    fields = [
        time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        platform.node(),
        os.environ.get("USER", ""),
        str(git["commit"]),
        "dirty" if git["dirty"] else "clean",
        shlex.join(command),
    ]
    new = not path.exists()
    with path.open("a") as log:
        if new:
            log.write("time\thost\tuser\tcommit\tstate\tcommand\n")
        log.write("\t".join(field.replace("\t", " ") for field in fields) + "\n")


def last_run(runs_log: str | Path) -> dict[str, str]:
    """The last line of the run log (:func:`log_run`) as a dict; empty when there is none."""
    path = Path(runs_log)
    lines = path.read_text().splitlines() if path.is_file() else []
    return dict(zip(lines[0].split("\t"), lines[-1].split("\t"), strict=False)) if len(lines) > 1 else {}


def write_provenance(
    *,
    config: Mapping[str, Any],
    sheet_paths: Sequence[str],
    slides: Sequence[Mapping[str, Any]],
    annotation_files: Sequence[str],
    workflow_dir: str,
    runs_log: str,
    out_json: str,
) -> None:
    """Write what a study run was made with, enough to rerun it exactly.

    Versions of every installed package, the workflow's commit and uncommitted diff, the platform,
    CPU and thread counts, the run's command line (the last line of ``runs_log``, see :func:`log_run`),
    the config, and the checksums of the sheet, of every slide file (``slides``: slide_id, path,
    sha256 and status of each) and of every annotation file.
    """
    sheets = [{"path": path, "sha256": file_sha256(path)} for path in sheet_paths]
    slides = [{key: row[key] for key in ("slide_id", "path", "sha256", "status")} for row in slides]
    annotations = [{"path": path, "sha256": file_sha256(path)} for path in sorted(set(annotation_files))]
    write_json(
        {
            "workflow": git_state(workflow_dir),
            "run": last_run(runs_log),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpu": {"model": cpu_model(), "count": os.cpu_count()},
            "threads": {"tf_threads": config.get("tf_threads"), "snakemake": "--cores in the run's command"},
            "packages": installed_packages(),
            "sheet": sheets[0] if sheets else None,
            "slides": slides,
            "annotations": annotations,
            "config": config,
        },
        out_json,
    )
