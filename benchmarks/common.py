"""What both benchmarks share: the repository root and the demo config as the workflow validates it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def default_config() -> dict:
    """Return the demo config (config/config.yaml), validated: every setting as the workflow uses it."""
    from slidesnake.config import validate_config

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    validate_config(config, SCHEMA)
    return config


def run_child(script: str, mode: str, work: Path, threads: int, slide: Path | None = None) -> dict:
    """Run one timed part of a benchmark script in a child process (``--child mode``); its JSON result.

    A child measures its own peak RSS, so each part runs in a fresh process of its own.
    """
    command = [sys.executable, str(Path(script).resolve()), "--child", mode, "--work", str(work)]
    command += ["--threads", str(threads)] + (["--slide", str(slide)] if slide else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench child {mode} failed:\n{done.stderr[-4000:]}")
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}
