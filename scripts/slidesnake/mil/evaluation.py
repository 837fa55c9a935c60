"""MIL metrics: slide and patient level with patient-bootstrap CIs, the seed spread, and attention
checked against annotations (does the network look where the annotated disease is?).

Each bag's probability is the mean over its seeds' networks (and, for test bags, over the folds'); a
patient's is the mean over its bags. Metrics come from :func:`slidesnake.metrics.level_metrics`: the
AUC with the patient bootstrap, proportions with Clopper-Pearson intervals, at ``threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import shapely
from sklearn.metrics import roc_auc_score

from ..intervals import MIN_DISTINCT, not_estimable
from ..metrics import ROW_KEYS, level_metrics, metric_columns
from ..tables import StoredTable

#: ``results/reports/{dataset}/mil_metrics.tsv`` (rule ``mil_report``): out-of-fold metrics of each pooling
#: at the bag and patient levels, with the spread of the seeds' bag-level AUCs.
MIL_METRICS_TABLE = StoredTable(
    paths=("results/reports/{dataset}/mil_metrics.tsv",),
    columns={
        "pooling": "text",
        **ROW_KEYS,
        **metric_columns(),
        **dict.fromkeys(("seed_auc_min", "seed_auc_max", "seeds"), "number"),
    },
)

#: ``results/reports/{dataset}/attention_check.tsv`` (rule ``mil_report``): per slide of the positive
#: class with annotations, the AUC of attention inside vs outside the annotated regions; last, the
#: ``mean over slides`` with its bootstrap interval and note.
ATTENTION_CHECK_TABLE = StoredTable(
    paths=("results/reports/{dataset}/attention_check.tsv",),
    columns={
        "slide_id": "text",
        **dict.fromkeys(("tiles", "inside", "auc", "ci_low", "ci_high"), "number"),
        "note": "text",
    },
)


def bag_probabilities(predictions: pd.DataFrame, positive_class: str) -> pd.DataFrame:
    """One row per pooling, split and bag: ``score`` = mean positive probability over seeds (and folds)."""
    p = f"p_{positive_class}"
    return (
        predictions.groupby(["pooling", "split", "bag"], sort=False)
        .agg(patient_id=("patient_id", "first"), label=("label", "first"), score=(p, "mean"))
        .reset_index()
    )


def _units(bags: pd.DataFrame, level: str, positive_class: str, threshold: float) -> pd.DataFrame:
    if level == "patient":
        bags = (
            bags.groupby(["split", "patient_id"], sort=False)
            .agg(label=("label", "first"), score=("score", "mean"))
            .reset_index()
            .assign(bag=lambda t: t["patient_id"])
        )
    truth = (bags["label"] == positive_class).astype(int)
    return bags.assign(item=bags["bag"], truth=truth, called=(bags["score"] >= threshold).astype(int))


def _seed_aucs(predictions: pd.DataFrame, positive_class: str) -> pd.DataFrame:
    """Each pooling's out-of-fold slide AUC per seed (a seed's networks across the folds)."""
    rows = []
    oof = predictions[predictions["split"] == "oof"]
    for (pooling, seed), part in oof.groupby(["pooling", "seed"]):
        truth = (part["label"] == positive_class).astype(int)
        auc = roc_auc_score(truth, part[f"p_{positive_class}"]) if truth.nunique() == 2 else np.nan
        rows.append({"pooling": pooling, "seed": seed, "auc": auc})
    return pd.DataFrame(rows, columns=["pooling", "seed", "auc"])


def mil_metrics(
    predictions: pd.DataFrame,
    *,
    bag: str,
    positive_class: str,
    threshold: float,
    resamples: int,
    seed: int,
) -> pd.DataFrame:
    """Every metric with its CI, per pooling, level (the bag's and patient) and split, with the seed spread.

    Returns
    -------
    pandas.DataFrame
        ``pooling``, ``level``, ``unit``, ``threshold``, the columns of
        :func:`slidesnake.metrics.level_metrics`, then ``seed_auc_min``, ``seed_auc_max`` and ``seeds``
        (the out-of-fold AUC of each seed's networks, at the bag level).
    """
    bags = bag_probabilities(predictions, positive_class)
    spread = _seed_aucs(predictions, positive_class)
    tables = []
    for pooling in ("attention", "mean"):
        mine = bags[bags["pooling"] == pooling]
        if mine.empty:
            continue
        for level in dict.fromkeys([bag, "patient"]):
            units = _units(mine, level, positive_class, threshold)
            table = level_metrics(
                units,
                truth="truth",
                called="called",
                score="score",
                resamples=resamples,
                seed=seed,
                exact=True,
                unit=level,
            )
            table.insert(0, "pooling", pooling)
            table.insert(1, "level", level)
            table.insert(2, "unit", f"{level}s")
            table.insert(3, "threshold", threshold)
            aucs = spread[spread["pooling"] == pooling]["auc"]
            is_bag = level == bag
            table["seed_auc_min"] = round(float(aucs.min()), 4) if is_bag and aucs.notna().any() else np.nan
            table["seed_auc_max"] = round(float(aucs.max()), 4) if is_bag and aucs.notna().any() else np.nan
            table["seeds"] = len(aucs)
            tables.append(table)
    return pd.concat(tables, ignore_index=True)


def tile_centres_inside(
    corners: np.ndarray, side_level0: float, regions: Sequence[shapely.Geometry]
) -> np.ndarray:
    """Whether each tile's centre (corners: (tile, 2) level-0 ``x0, y0``) lies in one of `regions`."""
    if not regions:
        return np.zeros(len(corners), bool)
    union = shapely.union_all(list(regions))
    centres = shapely.points(corners[:, 0] + side_level0 / 2, corners[:, 1] + side_level0 / 2)
    return shapely.contains(union, centres)


def attention_check(
    attention: pd.DataFrame, inside: pd.Series, *, resamples: int, seed: int
) -> tuple[pd.DataFrame, dict]:
    """How well attention ranks a slide's annotated region above the rest of it, per slide and overall.

    Parameters
    ----------
    attention : pandas.DataFrame
        A row per tile: ``slide_id``, ``attention`` (aligned with `inside`).
    inside : pandas.Series of bool
        Whether the tile lies in the slide's annotated region.
    resamples, seed : int
        The bootstrap over slides of the mean AUC.

    Returns
    -------
    tuple
        Per slide (``slide_id``, ``tiles``, ``inside``, ``auc``: of attention, inside vs outside;
        NaN where a slide has tiles on one side only) and the summary (``slides``, ``mean_auc``,
        ``ci_low``, ``ci_high``, ``note``).
    """
    rows = []
    for slide_id, part in attention.assign(inside=inside.to_numpy()).groupby("slide_id", sort=True):
        n_in = int(part["inside"].sum())
        auc = np.nan
        if 0 < n_in < len(part):
            auc = float(roc_auc_score(part["inside"], part["attention"]))
        rows.append({"slide_id": slide_id, "tiles": len(part), "inside": n_in, "auc": round(auc, 4)})
    per_slide = pd.DataFrame(rows, columns=["slide_id", "tiles", "inside", "auc"])
    aucs = per_slide["auc"].dropna().to_numpy()
    summary = {"slides": len(aucs), "mean_auc": np.nan, "ci_low": np.nan, "ci_high": np.nan, "note": ""}
    if len(aucs):
        summary["mean_auc"] = round(float(aucs.mean()), 4)
    if len(set(aucs.tolist())) >= MIN_DISTINCT:  # fewer distinct values: a degenerate bootstrap
        rng = np.random.default_rng(seed)
        means = aucs[rng.integers(0, len(aucs), (resamples, len(aucs)))].mean(axis=1)
        low, high = np.quantile(means, [0.025, 0.975])
        summary |= {"ci_low": round(float(low), 4), "ci_high": round(float(high), 4)}
        summary["note"] = f"bootstrap over slides ({resamples})"
    else:
        summary["note"] = not_estimable(len(aucs), "slide") + (
            f", {len(set(aucs.tolist()))} distinct values" if len(aucs) >= MIN_DISTINCT else ""
        )
    return per_slide, summary
