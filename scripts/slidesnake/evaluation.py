"""A dataset's or cohort's scored entries and its metrics at every level, with confidence intervals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .entries import ENTRIES_TABLE, PREDICTIONS_TABLE, entry_keys, levels
from .io import read_json
from .metrics import METRICS_TABLE, level_metrics
from .settings import EvaluationSettings
from .tables import StoredTable

#: Columns of ``items.tsv`` (one row per slide or image) besides ``item``, ``split`` and ``patient_id``.
ITEM_COLUMNS = ("entries", "share_labelled_positive", "share_called_positive", "mean_probability")

#: ``results/reports/{name}/items.tsv`` (rule ``evaluate``): one row per slide or image with its entries'
#: shares (:data:`ITEM_COLUMNS`); a slide's score, whether it is labelled positive, and the Dice and IoU of
#: its called tiles against its annotated ones.
ITEMS_TABLE = StoredTable(
    paths=("results/reports/{name}/items.tsv",),
    columns={
        "item": "text",
        "split": "text",
        "patient_id": "text",
        **dict.fromkeys(ITEM_COLUMNS, "number"),
        "score": "number",
        "label_positive": "bool",
        "dice": "number",
        "iou": "number",
    },
    optional=frozenset(("score", "label_positive", "dice", "iou")),
)

#: ``results/reports/performance.tsv`` (rule ``performance``): every model on every held-out set (the
#: test splits, the cohorts, a MIL dataset's out-of-fold bags), ``internal`` or ``external``.
PERFORMANCE_TABLE = StoredTable(
    paths=("results/reports/performance.tsv",),
    columns={
        "model": "text",
        "evaluated_on": "text",
        "validation": "text",
        **{k: v for k, v in METRICS_TABLE.columns.items() if k != "dataset"},
    },
)


def read_predictions(prediction_tsvs: Sequence[str]) -> pd.DataFrame:
    """The prediction tables of a dataset's or cohort's slides (or its images), as one table."""
    return pd.concat([PREDICTIONS_TABLE.read(path) for path in prediction_tsvs], ignore_index=True)


def performance_table(metrics: Sequence[pd.DataFrame], models: Mapping[str, str]) -> pd.DataFrame:
    """The held-out rows (test, external, a MIL dataset's oof) of the datasets' and cohorts' `metrics`
    tables side by side, each with the ``model`` (`models`: dataset or cohort -> its model) evaluated."""
    held_out = [table[table["split"].isin(["test", "external", "oof"])] for table in metrics]
    joined = pd.concat(held_out, ignore_index=True) if held_out else METRICS_TABLE.empty()
    joined.insert(0, "model", joined["dataset"].map(models))
    joined = joined.rename(columns={"dataset": "evaluated_on"})
    joined.insert(2, "validation", np.where(joined["split"] == "external", "external", "internal"))
    return joined


def scored_entries(entries_tsv: str, predictions: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """The labelled entries with their class probabilities and the most probable class (``predicted``)."""
    entries = ENTRIES_TABLE.read(entries_tsv)
    keys = entry_keys(entries)
    columns = [f"p_{c}" for c in classes]
    scored = entries.merge(predictions[[*keys, *columns]], on=keys, validate="one_to_one")
    scored["predicted"] = (
        np.asarray(classes)[scored[columns].to_numpy().argmax(axis=1)] if len(scored) else []
    )
    return scored


def read_slide_scores(score_jsons: Sequence[str]) -> pd.DataFrame:
    """The slide scores predict wrote: one row per slide (``item``, ``score``, ``label_positive``, ...)."""
    return pd.DataFrame([read_json(path) for path in score_jsons]).rename(columns={"slide_id": "item"})


def _slides(scored: pd.DataFrame, slide_scores: pd.DataFrame) -> pd.DataFrame:
    """One row per slide: split and patient (from its entries), its score, whether it is labelled positive."""
    per_item = scored.groupby("item").agg(split=("split", "first"), patient_id=("patient_id", "first"))
    return per_item.reset_index().merge(slide_scores, on="item")


def _patients(units: pd.DataFrame, truth: str, score: str) -> pd.DataFrame:
    """One row per patient: the highest score of its units, positive if any of them is."""
    patients = units.groupby("patient_id").agg(
        split=("split", "first"), score=(score, "max"), truth=(truth, "max")
    )
    return patients.reset_index().assign(item=lambda t: t["patient_id"])


def evaluation_tables(
    scored: pd.DataFrame,
    slide_scores: pd.DataFrame | None,
    *,
    classes: Sequence[str],
    positive_class: str,
    threshold: float,
    settings: EvaluationSettings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metrics at every level (with CIs) and the per-item table of a dataset's or cohort's scored entries.

    Tile (image) level: the most probable class against the label, every interval the patient
    bootstrap; slide and patient level: the score at ``threshold`` against the truth, proportions
    with Clopper-Pearson intervals (see :func:`slidesnake.metrics.level_metrics`).

    ``slide_scores`` (one row per slide: ``item``, ``score``, ``label_positive``, optionally ``dice`` and
    ``iou``) gives the slide level of tile entries; None for images.
    """
    others = [c for c in classes if c != positive_class]
    names = (positive_class, others[0] if len(others) == 1 else f"not {positive_class}")
    boot = {"resamples": settings.bootstrap, "seed": settings.seed, "names": names}
    p = f"p_{positive_class}"
    first, *rest = levels(scored)
    tables = [
        level_metrics(
            scored, truth="label", called="predicted", score=p, positive=positive_class, unit=first, **boot
        )
    ]
    tables[0].insert(0, "level", first)
    exact = boot | {"exact": True}  # slides and patients are trials: Clopper-Pearson for proportions
    units = scored.assign(truth=(scored["label"] == positive_class).astype(int), score=scored[p])
    if "slide" in rest:
        units = _slides(scored, slide_scores)
        units = units.assign(truth=units["label_positive"].astype(int))
        called = (units["score"] >= threshold).astype(int)
        slide = level_metrics(
            units.assign(called=called), truth="truth", called="called", score="score", **exact, unit="slide"
        )
        tables.append(slide.assign(level="slide"))
    patients = _patients(units, "truth", "score")
    called = (patients["score"] >= threshold).astype(int)
    patient = level_metrics(
        patients.assign(called=called), truth="truth", called="called", score="score", **exact, unit="patient"
    )
    tables.append(patient.assign(level="patient"))
    metrics = pd.concat(tables, ignore_index=True)
    metrics.insert(
        2, "unit", metrics["level"].map({"tile": "tiles", "image": "images"}).fillna(metrics["level"] + "s")
    )
    metrics.insert(3, "threshold", np.where(metrics["level"] == first, np.nan, threshold))
    items = (
        scored.groupby(["item", "split", "patient_id"], sort=False)
        .agg(
            entries=(p, "size"),
            share_labelled_positive=("label", lambda s: float((s == positive_class).mean())),
            share_called_positive=("predicted", lambda s: float((s == positive_class).mean())),
            mean_probability=(p, "mean"),
        )
        .round(4)
        .reset_index()
    )
    if "slide" in rest:
        extra = _slides(scored, slide_scores).reindex(
            columns=["item", "score", "label_positive", "dice", "iou"]
        )
        items = items.merge(extra, on="item", how="left")
    return metrics, items


def with_left_out_note(
    metrics: pd.DataFrame, scored: pd.DataFrame, predictions: pd.DataFrame
) -> pd.DataFrame:
    """Say in the tile rows' note how many of the slides' stored tiles have no label and are left out
    (boundary tiles no class covers enough of, tiles of excluded or unmapped classes)."""
    if "aligned" not in predictions or metrics.empty:  # images: every entry is labelled
        return metrics
    stored_tiles = predictions[predictions["aligned"].astype(str) == "True"]
    stored = stored_tiles.groupby(stored_tiles["item"].astype(str)).size()
    splits = scored.groupby("item")["split"].first()
    labelled = scored.groupby("item").size()
    for split in set(splits):
        items = [i for i in splits.index[splits == split] if i in stored.index]
        total, used = int(stored[items].sum()), int(labelled[items].sum())
        if total > used:
            text = f"{total - used} of {total} stored tiles unlabelled (boundary, excluded class): left out"
            rows = (metrics["level"] == "tile") & (metrics["split"] == split)
            metrics.loc[rows, "note"] = [
                "; ".join(filter(None, [n if isinstance(n, str) else "", text]))
                for n in metrics.loc[rows, "note"]
            ]
    return metrics
