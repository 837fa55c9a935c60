"""Classification metrics at tile (or image), slide and patient level, each with its 95% CI and method.

Proportions of independent units (accuracy, sensitivity, specificity, PPV, NPV of slides or
patients) get exact Clopper-Pearson intervals; every metric of tiles (clustered in patients), and
AUC, balanced accuracy and F1 at every level, get the patient bootstrap, or 'not estimable' with
its reason where it cannot give one (see :mod:`slidesnake.intervals`). A metric undefined on the
data is NaN and its reason is in the row's ``note``. Sensitivity, specificity, PPV and NPV are of
the positive class against the rest, at the operating point that makes ``called``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from .intervals import Estimate, bootstrap, clopper_pearson, join_notes, label, method_summary
from .tables import Kind, StoredTable

#: The metrics of every level, in column order; each gets ``_ci_low``, ``_ci_high`` and ``_ci_method``.
METRICS = ("auc", "accuracy", "balanced_accuracy", "f1", "sensitivity", "specificity", "ppv", "npv")
#: The metrics that are proportions of units: Clopper-Pearson where the units are independent.
PROPORTIONS = ("accuracy", "sensitivity", "specificity", "ppv", "npv")
SPLIT_ORDER = ("train", "val", "test", "external", "oof")


def metric_columns(*, spread: bool = False) -> dict[str, Kind]:
    """The columns of :func:`level_metrics` from ``n`` on: counts, each metric with its interval (and, with
    `spread`, its SD across folds, ``<metric>_sd``), ``ci_method`` and ``note``."""
    columns: dict[str, Kind] = dict.fromkeys(("n", "items", "patients"), "number")
    for name in METRICS:
        columns |= dict.fromkeys((name, f"{name}_ci_low", f"{name}_ci_high"), "number")
        columns[f"{name}_ci_method"] = "text"
        if spread:
            columns[f"{name}_sd"] = "number"
    return columns | {"ci_method": "text", "note": "text"}


#: Where a row of metrics belongs: its level (``tile``, ``image``, ``slide``, ``patient``), unit (the
#: level's plural), threshold (slide and patient levels' score threshold) and split.
ROW_KEYS: dict[str, Kind] = {"level": "text", "unit": "text", "threshold": "number", "split": "text"}

#: ``results/reports/{name}/metrics.tsv`` (rule ``evaluate``; a MIL dataset's by ``mil_report``): a
#: dataset's or cohort's metrics with 95% CIs per level and split.
METRICS_TABLE = StoredTable(
    paths=("results/reports/{name}/metrics.tsv",),
    columns={"dataset": "text", **ROW_KEYS, **metric_columns()},
)

#: ``results/reports/{name}/class_auc.tsv`` (rule ``evaluate``): one-vs-rest AUC of each class per split.
CLASS_AUC_TABLE = StoredTable(
    paths=("results/reports/{name}/class_auc.tsv",),
    columns={
        "split": "text",
        "class": "text",
        **dict.fromkeys(("n", "auc", "auc_ci_low", "auc_ci_high"), "number"),
        "auc_ci_method": "text",
        "note": "text",
    },
)

#: ``results/reports/{name}/confusion.tsv`` (rule ``evaluate``): per split and true class, the count of
#: entries of each most probable class (one column per class).
CONFUSION_TABLE = StoredTable(
    paths=("results/reports/{name}/confusion.tsv",), columns={"split": "text", "true": "text"}, more="number"
)

Metric = Callable[[np.ndarray, np.ndarray, np.ndarray], float]


# The metrics in NumPy, equal to scikit-learn's roc_auc_score, accuracy_score,
# balanced_accuracy_score, f1_score(zero_division=0), recall_score and precision_score (with
# zero_division=nan; tests/test_deploy.py holds them to it): the bootstrap calls them 1,000 times
# per split and level, and scikit-learn's input checks made that most of the time of an evaluation.


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


def _counts(truth: np.ndarray, called: np.ndarray, positive: int = 1) -> dict[str, tuple[int, int]]:
    """``{proportion: (successes, trials)}`` of :data:`PROPORTIONS`, the positive class against the rest."""
    is_positive, called_positive = truth == positive, called == positive
    tp = int(np.sum(is_positive & called_positive))
    tn = int(np.sum(~is_positive & ~called_positive))
    return {
        "accuracy": (int(np.sum(truth == called)), len(truth)),
        "sensitivity": (tp, int(is_positive.sum())),
        "specificity": (tn, int((~is_positive).sum())),
        "ppv": (tp, int(called_positive.sum())),
        "npv": (tn, int((~called_positive).sum())),
    }


def _proportion(name: str, truth: np.ndarray, _: np.ndarray, called: np.ndarray, positive: int = 1) -> float:
    successes, trials = _counts(truth, called, positive)[name]
    return successes / trials if trials else np.nan


FUNCTIONS: dict[str, Metric] = {"auc": _auc, "accuracy": _accuracy, "balanced_accuracy": _balanced, "f1": _f1}
FUNCTIONS |= {name: partial(_proportion, name) for name in PROPORTIONS[1:]}


def _level_values(
    true_codes: np.ndarray,
    called_codes: np.ndarray,
    binary: np.ndarray,
    scores: np.ndarray,
    positive_code: int,
    wanted: Sequence[str],
    index: np.ndarray,
) -> dict[str, float]:
    """The metrics ``wanted`` (of :data:`METRICS`) on the units at ``index``."""
    t, s, c = true_codes[index], scores[index], called_codes[index]
    found = {"auc": _auc(binary[index], s, c), "balanced_accuracy": _balanced(t, s, c)}
    found["f1"] = _f1(t, s, c, positive_code)
    counts = _counts(t, c, positive_code)
    found |= {name: (k / n if n else np.nan) for name, (k, n) in counts.items()}
    return {name: found[name] for name in wanted}


def _undefined(name: str, counts: dict[str, tuple[int, int]], unit: str, names: tuple[str, str]) -> str:
    """Why metric ``name`` is undefined on units of these counts (``counts`` as :func:`_counts`)."""
    positives, n = counts["sensitivity"][1], counts["accuracy"][1]
    classes = f"({positives} {names[0]}, {n - positives} {names[1]})"
    if n == 0:
        why = f"no {unit}s"
    elif name == "ppv":
        why = f"no {unit} is called {names[0]}"
    elif name == "npv":
        why = f"every {unit} is called {names[0]}"
    elif positives == n:
        why = f"every {unit} is {names[0]} {classes}"
    elif positives == 0:
        why = f"no {unit} is {names[0]} {classes}"
    else:
        why = "one class only"
    return f"{label(name)} not estimable: {why}"


def level_metrics(
    units: pd.DataFrame,
    *,
    truth: str,
    score: str,
    called: str,
    resamples: int,
    seed: int,
    positive: int | str = 1,
    exact: bool = False,
    unit: str = "unit",
    names: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """Every metric of :data:`METRICS` with its CI and method, one row per split, for one level of units.

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
    exact : bool
        Whether the units are independent trials (slides, patients): :data:`PROPORTIONS` then get
        Clopper-Pearson intervals; otherwise (tiles) every metric gets the patient bootstrap.
    unit : str
        What a unit is (``tile``, ``slide``), for the notes.
    names : tuple of str, optional
        How the notes name the positive class and the rest (default ``positive`` and ``not <positive>``).

    Returns
    -------
    pandas.DataFrame
        Columns ``split``, ``n``, ``items``, ``patients``, then each of :data:`METRICS` with its
        ``_ci_low``, ``_ci_high`` and ``_ci_method``, then ``ci_method`` (the row's methods in one
        text) and ``note`` (why a value or interval is missing, ``; ``-joined).
    """
    names = names or (str(positive), f"not {positive}")
    rows = []
    for split in [s for s in SPLIT_ORDER if s in set(units["split"])]:
        part = units[units["split"] == split]
        classes = pd.Index(sorted(set(part[truth]) | set(part[called]) | {positive}, key=str))
        true_codes = classes.get_indexer(part[truth])
        called_codes = classes.get_indexer(part[called])
        positive_code = int(classes.get_loc(positive))
        binary = (true_codes == positive_code).astype(int)
        scores = part[score].to_numpy(float)

        wanted = [m for m in METRICS if not (exact and m in PROPORTIONS)]
        values = partial(_level_values, true_codes, called_codes, binary, scores, positive_code, wanted)
        found = bootstrap(values, part["patient_id"].to_numpy(), resamples=resamples, seed=seed)
        counts = _counts(true_codes, called_codes, positive_code)
        if exact:
            found |= {m: clopper_pearson(*counts[m], unit=unit) for m in PROPORTIONS}
        row = {
            "split": split,
            "n": len(part),
            "items": part["item"].nunique(),
            "patients": part["patient_id"].nunique(),
        }
        notes = []
        for name in METRICS:
            estimate = found[name]
            row |= {
                name: estimate.value,
                f"{name}_ci_low": estimate.low,
                f"{name}_ci_high": estimate.high,
                f"{name}_ci_method": estimate.method,
            }
            if np.isnan(estimate.value):
                notes.append(_undefined(name, counts, unit, names))
            elif estimate.note:
                notes.append(estimate.note)
        rows.append(row | {"ci_method": method_summary(row, METRICS), "note": join_notes(notes)})
    columns = [
        "split",
        "n",
        "items",
        "patients",
        *(f"{m}{s}" for m in METRICS for s in ("", "_ci_low", "_ci_high", "_ci_method")),
        "ci_method",
        "note",
    ]
    return pd.DataFrame(rows, columns=columns).round(4)


def class_aucs(scored: pd.DataFrame, classes: Sequence[str], *, resamples: int, seed: int) -> pd.DataFrame:
    """One-vs-rest AUC of every class with its CI, per split (``split``, ``class``, ``n``, ``auc``...).

    Columns ``auc_ci_low``, ``auc_ci_high``, ``auc_ci_method`` (the patient bootstrap, or not
    estimable) and ``note`` (why a value or interval is missing).
    """
    rows = []
    for split in [s for s in SPLIT_ORDER if s in set(scored["split"])]:
        part = scored[scored["split"] == split]
        for name in classes:
            truth = (part["label"] == name).to_numpy(int)
            scores = part[f"p_{name}"].to_numpy(float)
            found: Estimate = bootstrap(
                lambda index, t=truth, s=scores: {"auc": _auc(t[index], s[index], t[index])},
                part["patient_id"].to_numpy(),
                resamples=resamples,
                seed=seed,
            )["auc"]
            note = found.note
            if np.isnan(found.value):
                note = f"AUC not estimable: {int(truth.sum())} {name}, {int(len(truth) - truth.sum())} other"
            rows.append(
                {
                    "split": split,
                    "class": name,
                    "n": int(truth.sum()),
                    "auc": found.value,
                    "auc_ci_low": found.low,
                    "auc_ci_high": found.high,
                    "auc_ci_method": found.method,
                    "note": note,
                }
            )
    columns = ["split", "class", "n", "auc", "auc_ci_low", "auc_ci_high", "auc_ci_method", "note"]
    return pd.DataFrame(rows, columns=columns).round(4)


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
