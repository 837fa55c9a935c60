"""Classification metrics at tile (or image), slide and patient level, with patient-bootstrap 95% CIs.

Confidence intervals resample *patients* with replacement (seeded), keeping all the units (tiles,
slides) of each drawn patient, so that correlated tiles of one patient do not pass for independent
evidence; the interval is the 2.5th to 97.5th percentile of the resampled values. A resample in
which a metric is undefined (one class only, for AUC) is skipped; a metric undefined on the data
itself is NaN with NaN bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import pandas as pd
from scipy.stats import rankdata

#: The metrics of every level, in column order; each gets ``<name>_ci_low`` and ``<name>_ci_high``.
METRICS = ("auc", "accuracy", "balanced_accuracy", "f1")
SPLIT_ORDER = ("train", "val", "test", "external", "oof")

Metric = Callable[[np.ndarray, np.ndarray, np.ndarray], float]


# The four metrics in NumPy, equal to scikit-learn's roc_auc_score, accuracy_score,
# balanced_accuracy_score and f1_score(zero_division=0) (tests/test_deploy.py holds them to it):
# the bootstrap calls them 1,000 times per split and level, and scikit-learn's input checks made
# that most of the time of an evaluation.


def _auc(truth: np.ndarray, score: np.ndarray, _: np.ndarray) -> float:
    """The ROC AUC as the Mann-Whitney U statistic over its maximum (ties count one half)."""
    positive = truth == 1
    n_positive = int(positive.sum())
    n_negative = len(positive) - n_positive
    if n_positive == 0 or n_negative == 0:
        return np.nan
    ranks = rankdata(score)
    u = ranks[positive].sum() - n_positive * (n_positive + 1) / 2
    return float(u / (n_positive * n_negative))


def _accuracy(truth: np.ndarray, _: np.ndarray, called: np.ndarray) -> float:
    return float(np.mean(truth == called)) if len(truth) else np.nan


def _balanced(truth: np.ndarray, _: np.ndarray, called: np.ndarray) -> float:
    """The mean recall over the classes present in ``truth``; NaN with fewer than two."""
    present = np.unique(truth)
    if len(present) < 2:
        return np.nan
    return float(np.mean([np.mean(called[truth == k] == k) for k in present]))


def _f1(truth: np.ndarray, _: np.ndarray, called: np.ndarray, positive: int = 1) -> float:
    true_positive = truth == positive
    called_positive = called == positive
    hits = int(np.sum(true_positive & called_positive))
    denominator = int(true_positive.sum()) + int(called_positive.sum())
    return 2 * hits / denominator if denominator else 0.0


FUNCTIONS: dict[str, Metric] = {"auc": _auc, "accuracy": _accuracy, "balanced_accuracy": _balanced, "f1": _f1}


def bootstrap(
    values: Callable[[np.ndarray], dict[str, float]],
    patients: np.ndarray,
    *,
    resamples: int,
    seed: int,
) -> dict[str, tuple[float, float, float]]:
    """Metrics with their 95% CI from resampling patients with replacement.

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
        ``{metric: (value, ci_low, ci_high)}``.
    """
    codes, unique = pd.factorize(pd.Series(patients, dtype=str))
    groups = [np.flatnonzero(codes == k) for k in range(len(unique))]
    point = values(np.arange(len(patients)))
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {name: [] for name in point}
    for _ in range(resamples):
        chosen = rng.integers(0, len(groups), len(groups))
        index = np.concatenate([groups[k] for k in chosen]) if len(groups) else np.arange(0)
        for name, value in values(index).items():
            if np.isfinite(value):
                draws[name].append(value)
    result = {}
    for name, value in point.items():
        sample = draws[name]
        if not np.isfinite(value) or not sample:
            result[name] = (value, np.nan, np.nan)
        else:
            low, high = np.percentile(sample, [2.5, 97.5])
            result[name] = (value, float(low), float(high))
    return result


def _level_values(
    true_codes: np.ndarray,
    called_codes: np.ndarray,
    binary: np.ndarray,
    scores: np.ndarray,
    positive_code: int,
    index: np.ndarray,
) -> dict[str, float]:
    """Every metric of :data:`METRICS` on the units at ``index``."""
    t, s, c = true_codes[index], scores[index], called_codes[index]
    return {
        "auc": _auc(binary[index], s, c),
        "accuracy": _accuracy(t, s, c),
        "balanced_accuracy": _balanced(t, s, c),
        "f1": _f1(t, s, c, positive_code),
    }


def level_metrics(
    units: pd.DataFrame,
    *,
    truth: str,
    score: str,
    called: str,
    resamples: int,
    seed: int,
    positive: int | str = 1,
) -> pd.DataFrame:
    """AUC, accuracy, balanced accuracy and F1 with CIs, one row per split, for one level of units.

    Parameters
    ----------
    units : pandas.DataFrame
        One row per unit (tile, slide or patient) with ``split``, ``patient_id``, ``item`` and the
        columns named below.
    truth, called : str
        Columns of the true and the predicted class (any labels; ``positive`` is the positive one).
    score : str
        Column of the positive-class score (for the AUC).
    resamples, seed : int
        The bootstrap.
    positive : int or str
        The positive class among the values of ``truth`` and ``called``.

    Returns
    -------
    pandas.DataFrame
        Columns ``split``, ``n``, ``items``, ``patients``, then each of :data:`METRICS` with its
        ``_ci_low`` and ``_ci_high``.
    """
    rows = []
    for split in [s for s in SPLIT_ORDER if s in set(units["split"])]:
        part = units[units["split"] == split]
        classes = pd.Index(sorted(set(part[truth]) | set(part[called]) | {positive}, key=str))
        true_codes = classes.get_indexer(part[truth])
        called_codes = classes.get_indexer(part[called])
        positive_code = int(classes.get_loc(positive))
        binary = (true_codes == positive_code).astype(int)
        scores = part[score].to_numpy(float)

        values = partial(_level_values, true_codes, called_codes, binary, scores, positive_code)
        found = bootstrap(values, part["patient_id"].to_numpy(), resamples=resamples, seed=seed)
        row = {
            "split": split,
            "n": len(part),
            "items": part["item"].nunique(),
            "patients": part["patient_id"].nunique(),
        }
        for name in METRICS:
            value, low, high = found[name]
            row |= {name: value, f"{name}_ci_low": low, f"{name}_ci_high": high}
        rows.append(row)
    columns = [
        "split",
        "n",
        "items",
        "patients",
        *(f"{m}{s}" for m in METRICS for s in ("", "_ci_low", "_ci_high")),
    ]
    return pd.DataFrame(rows, columns=columns).round(4)


def class_aucs(scored: pd.DataFrame, classes: Sequence[str], *, resamples: int, seed: int) -> pd.DataFrame:
    """One-vs-rest AUC of every class with its CI, per split (columns ``split``, ``class``, ``auc``...)."""
    rows = []
    for split in [s for s in SPLIT_ORDER if s in set(scored["split"])]:
        part = scored[scored["split"] == split]
        for name in classes:
            truth = (part["label"] == name).to_numpy(int)
            scores = part[f"p_{name}"].to_numpy(float)
            found = bootstrap(
                lambda index, t=truth, s=scores: {"auc": _auc(t[index], s[index], t[index])},
                part["patient_id"].to_numpy(),
                resamples=resamples,
                seed=seed,
            )
            value, low, high = found["auc"]
            rows.append(
                {
                    "split": split,
                    "class": name,
                    "n": int(truth.sum()),
                    "auc": value,
                    "auc_ci_low": low,
                    "auc_ci_high": high,
                }
            )
    return pd.DataFrame(rows, columns=["split", "class", "n", "auc", "auc_ci_low", "auc_ci_high"]).round(4)


def confusion_table(scored: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Counts of (split, true class, predicted class), the predicted class being the most probable."""
    predicted = np.asarray(classes)[scored[[f"p_{c}" for c in classes]].to_numpy().argmax(axis=1)]
    table = pd.crosstab([scored["split"], scored["label"]], pd.Series(predicted, name="predicted"))
    table = table.reindex(columns=list(classes), fill_value=0)
    table.columns.name = None
    return table.reset_index().rename(columns={"label": "true"})


def slide_score(probabilities: np.ndarray, how: str) -> float:
    """A slide's score from its tiles' positive-class probabilities.

    ``top_decile_mean`` is the mean of the highest tenth (at least one tile): a slide with a small
    tumor still scores high, one noisy tile does not decide; ``mean`` and ``max`` are as named.
    NaN for a slide without tiles.
    """
    if not len(probabilities):
        return float("nan")
    if how == "mean":
        return float(np.mean(probabilities))
    if how == "max":
        return float(np.max(probabilities))
    top = np.sort(probabilities)[-max(1, int(np.ceil(len(probabilities) / 10))) :]
    return float(np.mean(top))


def agreement(called: np.ndarray, annotated_fraction: np.ndarray) -> tuple[float, float]:
    """Dice and IoU of a thresholded tile map with annotation regions, within the predicted tiles.

    Parameters
    ----------
    called : numpy.ndarray
        Per tile, whether the map calls it positive.
    annotated_fraction : numpy.ndarray
        Per tile, the share of its area inside the positive class's annotation regions (exact,
        from the polygons).

    Returns
    -------
    tuple of float
        Dice ``2|A and P| / (|A| + |P|)`` and IoU ``|A and P| / |A or P|``, areas in tiles (tiles
        do not overlap); NaN when both are empty.
    """
    called = np.asarray(called, bool)
    fraction = np.asarray(annotated_fraction, float)
    both = float(fraction[called].sum())
    annotated, predicted = float(fraction.sum()), float(called.sum())
    if annotated + predicted == 0:
        return float("nan"), float("nan")
    return 2 * both / (annotated + predicted), both / (annotated + predicted - both)
