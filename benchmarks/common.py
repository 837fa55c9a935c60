"""What both benchmarks share: the repository root and the demo config as the workflow validates it."""

from __future__ import annotations

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
