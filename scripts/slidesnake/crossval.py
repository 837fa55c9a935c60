"""Cross-validation: out-of-fold predictions of k fold models, metrics per fold, pooled and across folds.

Each fold's model scores the patients it never trained on, so the out-of-fold (OOF) predictions
cover every non-test item once. Metrics are given three ways:

- per fold, with the 95% CIs of that fold's held-out patients (as in ``evaluate``: the patient
  bootstrap, Clopper-Pearson for proportions of slides and patients, or not estimable);
- ``pooled``: all OOF predictions together, with CIs made the same way;
- ``mean``: the mean of the per-fold values, their standard deviation (``<metric>_sd``) and the 95% CI
  of the mean across folds (Student's t with k - 1 degrees of freedom, clipped to [0, 1]); not
  estimable with fewer than two folds of a value or when every fold gives the same value.

Each fold's model stopped early on its own held-out fold, so OOF figures lean optimistic; the test
split (never seen by any fold) is evaluated with the deployed model as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .entries import levels
from .evaluation import evaluation_tables
from .intervals import join_notes, label, method_summary, not_estimable
from .metrics import METRICS, ROW_KEYS, metric_columns, slide_score
from .settings import EvaluationSettings, SlideScore
from .tables import StoredTable

#: Split name of out-of-fold predictions in the metrics tables.
OOF = "oof"

#: ``results/crossval/{dataset}/metrics.tsv`` (rule ``crossval``): metrics per ``fold`` (its number),
#: ``pooled`` and the ``mean`` across folds (with the SD of each metric, ``<metric>_sd``).
CROSSVAL_TABLE = StoredTable(
    paths=("results/crossval/{dataset}/metrics.tsv",),
    columns={"dataset": "text", "fold": "text", **ROW_KEYS, **metric_columns(spread=True)},
)


def scored_oof(oof: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Out-of-fold predictions with split ``oof`` and the most probable class (``predicted``)."""
    columns = [f"p_{c}" for c in classes]
    predicted = np.asarray(classes)[oof[columns].to_numpy().argmax(axis=1)] if len(oof) else []
    return oof.assign(split=OOF, predicted=predicted)


def oof_slide_scores(scored: pd.DataFrame, *, positive_class: str, how: SlideScore) -> pd.DataFrame | None:
    """Slide scores from out-of-fold tile predictions (labelled tiles only); None for images.

    A slide is labelled positive when any of its tiles has the positive class, as in ``evaluate``.
    """
    if "slide" not in levels(scored):
        return None
    p = f"p_{positive_class}"
    rows = [
        {
            "item": item,
            "score": slide_score(part[p].to_numpy(float), how),
            "label_positive": bool((part["label"] == positive_class).any()),
        }
        for item, part in scored.groupby("item", sort=True)
    ]
    return pd.DataFrame(rows, columns=["item", "score", "label_positive"])


def crossval_metrics(
    scored: pd.DataFrame,
    *,
    classes: Sequence[str],
    positive_class: str,
    threshold: float,
    how: SlideScore,
    settings: EvaluationSettings,
) -> pd.DataFrame:
    """Metrics of every fold, of the pooled OOF predictions, and their mean across folds.

    Parameters
    ----------
    scored : pandas.DataFrame
        From :func:`scored_oof`: entries with ``fold``, ``label``, ``patient_id``, ``item`` and ``p_<class>``.
    classes : sequence of str
        The model's classes.
    positive_class, threshold, how
        The positive class, its operating point, and how a slide's score is made from its tiles.
    settings : EvaluationSettings
        The patient bootstrap.

    Returns
    -------
    pandas.DataFrame
        Columns ``fold`` (the fold number, ``pooled`` or ``mean``), the columns of the evaluation
        metrics table (``<metric>_ci_method``, ``ci_method`` and ``note`` say how each interval is
        made or why there is none), and ``<metric>_sd`` (on the ``mean`` rows).
    """

    def tables(part: pd.DataFrame) -> pd.DataFrame:
        metrics, _ = evaluation_tables(
            part,
            oof_slide_scores(part, positive_class=positive_class, how=how),
            classes=classes,
            positive_class=positive_class,
            threshold=threshold,
            settings=settings,
        )
        return metrics

    per_fold = [tables(part).assign(fold=str(fold)) for fold, part in scored.groupby("fold", sort=True)]
    pooled = tables(scored).assign(fold="pooled")
    folds = pd.concat(per_fold, ignore_index=True)
    table = pd.concat([folds, pooled, _mean_rows(folds, pooled)], ignore_index=True)
    first = ["fold", "level", "unit", "threshold", "split", "n", "items", "patients", "ci_method"]
    rest = [c for c in table.columns if c not in first]
    return table[first + rest].round(4)


def _mean_rows(folds: pd.DataFrame, pooled: pd.DataFrame) -> pd.DataFrame:
    """Per level: the mean of the fold values, their SD and the t-interval of the mean (or why none)."""
    rows = []
    for level, part in folds.groupby("level", sort=False):
        k = len(part)
        row = pooled[pooled["level"] == level].iloc[0].to_dict() | {"fold": "mean", "n": part["n"].sum()}
        notes = []
        for name in METRICS:
            values = part[name].dropna().to_numpy(float)
            mean = float(values.mean()) if len(values) else np.nan
            sd = float(values.std(ddof=1)) if len(values) > 1 else np.nan
            if len(values) > 1 and sd > 0:
                half = stats.t.ppf(0.975, len(values) - 1) * sd / np.sqrt(len(values))
                method = f"t across {k} folds"
            else:
                half, method = np.nan, not_estimable(len(values), "fold")
                why = (
                    "fewer than two folds give a value" if len(values) < 2 else f"every fold gives {mean:.3f}"
                )
                notes.append(f"{label(name)} {'interval ' if len(values) else ''}not estimable: {why}")
            row |= {  # every metric lies in [0, 1], and so does its interval
                name: mean,
                f"{name}_ci_low": float(np.clip(mean - half, 0, 1)),  # NaN stays NaN
                f"{name}_ci_high": float(np.clip(mean + half, 0, 1)),
                f"{name}_ci_method": method,
                f"{name}_sd": sd,
            }
        rows.append(row | {"ci_method": method_summary(row, METRICS), "note": join_notes(notes)})
    return pd.DataFrame(rows)
