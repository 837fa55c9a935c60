"""95% confidence intervals honest at every n, each named by its method, or 'not estimable' with a reason.

- ``clopper-pearson``: the exact binomial interval of a proportion (accuracy, sensitivity,
  specificity, PPV, NPV) whose units are independent trials (slides, patients). It never has zero
  width: 4 of 4 gives 0.40-1.00, 1 of 1 gives 0.025-1.00.
- ``patient bootstrap (<resamples>)``: the 2.5th to 97.5th percentile of the metric over resamples
  of *patients* with replacement (seeded), keeping all the units (tiles, slides) of each drawn
  patient, so that correlated tiles of one patient do not pass for independent evidence. A resample
  in which the metric is undefined (one class only, for AUC) is skipped.
- ``not estimable (<n> patients)``: where the bootstrap cannot give an interval -- fewer than two
  patients, the metric defined in fewer than half of the resamples, fewer than
  :data:`MIN_DISTINCT` distinct resample values, or every resample giving the same value -- the
  interval is NaN and the row's note says why, never ``x (x-x)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import binomtest

CLOPPER_PEARSON = "clopper-pearson"
#: Fewer distinct values than this over the resamples give no percentile interval.
MIN_DISTINCT = 3
#: A metric defined (e.g. both classes present) in fewer than this share of the resamples gets none.
MIN_DEFINED = 0.5


class Estimate(NamedTuple):
    """A metric's value, its 95% interval (NaN when there is none), the interval's method, and why not."""

    value: float
    low: float
    high: float
    method: str
    note: str = ""


def count_of(n: int, unit: str) -> str:
    """``1 patient``, ``4 patients``."""
    return f"{n} {unit}{'' if n == 1 else 's'}"


def not_estimable(n: int, unit: str = "patient") -> str:
    """The method of an interval that cannot be estimated: ``not estimable (1 patient)``."""
    return f"not estimable ({count_of(n, unit)})"


def bootstrap_method(resamples: int) -> str:
    """The method of a patient-bootstrap interval: ``patient bootstrap (1000)``."""
    return f"patient bootstrap ({resamples})"


def clopper_pearson(successes: int, trials: int, *, unit: str = "unit") -> Estimate:
    """The proportion ``successes / trials`` with its exact (Clopper-Pearson) 95% interval.

    Parameters
    ----------
    successes, trials : int
        The count of successes among independent trials.
    unit : str
        What a trial is (``slide``, ``patient``), for the method when there are none.

    Returns
    -------
    Estimate
        NaN with method ``not estimable (0 <unit>s)`` without trials.
    """
    if trials == 0:
        return Estimate(np.nan, np.nan, np.nan, not_estimable(0, unit))
    interval = binomtest(int(successes), int(trials)).proportion_ci(0.95, method="exact")
    return Estimate(successes / trials, float(interval.low), float(interval.high), CLOPPER_PEARSON)


def bootstrap(
    values: Callable[[np.ndarray], dict[str, float]],
    patients: np.ndarray,
    *,
    resamples: int,
    seed: int,
) -> dict[str, Estimate]:
    """Metrics with their 95% CI from resampling patients with replacement, or why there is none.

    Parameters
    ----------
    values : callable
        ``values(index) -> {metric: value}`` on the units at ``index`` (positions, with repeats).
    patients : numpy.ndarray
        The patient of each unit.
    resamples : int
        Number of bootstrap resamples.
    seed : int
        Seed of the resampling.

    Returns
    -------
    dict
        ``{metric: Estimate}``; a metric undefined on the data is NaN with an empty note (the caller
        knows why), an interval the resamples cannot give is NaN with its reason in the note.
    """
    codes, unique = pd.factorize(pd.Series(patients, dtype=str))
    groups = [np.flatnonzero(codes == k) for k in range(len(unique))]
    point = values(np.arange(len(patients)))
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {name: [] for name in point}
    if len(groups) >= 2:
        for _ in range(resamples):
            chosen = rng.integers(0, len(groups), len(groups))
            index = np.concatenate([groups[k] for k in chosen])
            for name, value in values(index).items():
                if np.isfinite(value):
                    draws[name].append(value)
    n = len(groups)
    result = {}
    for name, value in point.items():
        sample = np.asarray(draws[name], float)
        why = ""
        if not np.isfinite(value):
            result[name] = Estimate(value, np.nan, np.nan, not_estimable(n))
            continue
        if n < 2:
            why = f"the bootstrap resamples patients and there is {count_of(n, 'patient')}"
        elif len(sample) < MIN_DEFINED * resamples:
            why = f"defined in {len(sample)} of {resamples} resamples of {count_of(n, 'patient')}"
        elif len(np.unique(sample)) < MIN_DISTINCT:
            distinct = ", ".join(f"{v:.3f}" for v in np.unique(sample))
            why = f"the resamples of {count_of(n, 'patient')} give only {distinct}"
        else:
            low, high = np.percentile(sample, [2.5, 97.5])
            if high - low > 0:
                result[name] = Estimate(value, float(low), float(high), bootstrap_method(resamples))
                continue
            why = f"at least 95% of the resamples of {count_of(n, 'patient')} give {low:.3f}"
        result[name] = Estimate(
            value, np.nan, np.nan, not_estimable(n), f"{label(name)} interval not estimable: {why}"
        )
    return result


LABELS = {"auc": "AUC", "ppv": "PPV", "npv": "NPV", "f1": "F1", "balanced_accuracy": "balanced accuracy"}


def label(metric: str) -> str:
    """How a note names a metric: ``AUC``, ``PPV``, ``balanced accuracy``, ``sensitivity``."""
    return LABELS.get(metric, metric)


def method_summary(row: Mapping[str, object], metrics: Sequence[str]) -> str:
    """One text for a row's interval methods: one method, or ``method: metric, metric; method: ...``."""
    by_method: dict[str, list[str]] = {}
    for name in metrics:
        method = row.get(f"{name}_ci_method")
        if isinstance(method, str) and method:
            by_method.setdefault(method, []).append(name)
    if len(by_method) <= 1:
        return next(iter(by_method), "")
    return "; ".join(f"{method}: {', '.join(names)}" for method, names in by_method.items())


def join_notes(notes: Sequence[str]) -> str:
    """Notes ``<metric>[ interval] not estimable: <why>`` in one text, metrics of one reason together."""
    groups: dict[tuple[bool, str], list[str]] = {}
    for note in notes:
        head, _, why = note.partition(" not estimable: ")
        groups.setdefault((head.endswith(" interval"), why), []).append(head.removesuffix(" interval"))
    parts = []
    for (interval, why), names in groups.items():
        what = ", ".join(names) + ((" intervals" if len(names) > 1 else " interval") if interval else "")
        parts.append(f"{what} not estimable: {why}")
    return "; ".join(parts)


def interval_text(value: float, low: float, high: float, method: str = "") -> str:
    """A value as a reader sees it: ``0.931 (0.902-0.955)``, ``0.993, not estimable (1 patient)``, ``n/a``."""
    if pd.isna(value):
        return "n/a"
    if pd.isna(low) or pd.isna(high):
        reason = method if isinstance(method, str) and method.startswith("not estimable") else "no interval"
        return f"{value:.3f}, {reason}"
    return f"{value:.3f} ({low:.3f}-{high:.3f})"
