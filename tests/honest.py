"""What every metrics table row must say of its interval: a real one around the value, or why none."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def assert_interval(row: Mapping[str, Any], metric: str) -> None:
    """The interval of ``metric`` holds its value with width, or is 'not estimable' and says so.

    A resampling interval that cannot exist (one patient, every resample the same: the demo's
    perfect tile AUC) is NaN with ``<metric>_ci_method`` starting ``not estimable``; never ``x (x-x)``.
    """
    low, value, high = (float(row[f"{metric}{suffix}"]) for suffix in ("_ci_low", "", "_ci_high"))
    if np.isnan(low) or np.isnan(high):
        method = str(row[f"{metric}_ci_method"])
        assert method.startswith("not estimable"), f"{metric}: no interval and no reason ({method!r})"
    else:
        assert low <= value <= high and low < high, f"{metric}: {value} ({low}-{high})"
