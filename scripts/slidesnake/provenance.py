"""Provenance of a study run: software versions, the workflow's git commit, the config and the sheet."""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .checksums import file_sha256
from .io import write_json

PACKAGES = (
    "slidesnake",
    "snakemake",
    "numpy",
    "pandas",
    "openslide-python",
    "openslide-bin",
    "tifffile",
    "imagecodecs",
    "zarr",
    "dask",
    "scikit-image",
    "scikit-learn",
    "shapely",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_state(folder: str | Path) -> dict:
    """Commit of the git checkout holding ``folder`` and whether it has uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    return {"commit": commit or None, "dirty": bool(git("status", "--porcelain")) if commit else None}


def write_provenance(
    *, config: Mapping[str, Any], sheet_paths: Sequence[str], workflow_dir: str, out_json: str
) -> None:
    """Write what a study run was made with: versions, commit, platform, config and sheet checksum."""
    sheets = [{"path": path, "sha256": file_sha256(path)} for path in sheet_paths]
    write_json(
        {
            "workflow": git_state(workflow_dir),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "packages": {p: v for p in PACKAGES if (v := _version(p))},
            "sheet": sheets[0] if sheets else None,
            "config": config,
        },
        out_json,
    )
