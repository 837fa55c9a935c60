"""The page of one dataset or labelled cohort (``results/reports/<name>/summary.html``): its metrics with
their intervals, class AUCs, confusion, cross-validation, per-slide numbers and split membership."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from .html import heading, metric_warnings, paragraph, table, with_intervals

#: How the metrics are made, under the metrics table.
METRICS_NOTE = (
    "Tile (or image) level: the most probable class against the label; slide level: the slide score "
    "against whether the slide is labelled positive; patient level: each patient's highest score. "
    "n counts the units of the level; items are slides (or images). Intervals: Clopper-Pearson "
    "for proportions of slides and patients, the patient bootstrap otherwise; 'not estimable' "
    "where the data cannot give one (note says why), never a zero-width interval."
)
#: What the cross-validation rows are, under their table.
CROSSVAL_NOTE = (
    "Rows per fold and pooled: 95% CIs made as above; row mean: the mean of the "
    "folds, the standard deviation across folds (columns _sd) and the 95% t-interval of the "
    "mean. Each fold model stopped early on its own fold, so these lean optimistic; the test "
    "split's figures above come from the deployed model, on patients no fold model trained "
    "or stopped on."
)


def dataset_sections(
    *,
    model: str,
    metrics: pd.DataFrame,
    class_auc: pd.DataFrame,
    confusion: pd.DataFrame,
    crossval: pd.DataFrame | None,
    items: pd.DataFrame,
    splits: pd.DataFrame,
    leakage: Mapping[str, Any],
) -> list[str]:
    """The sections of a dataset's or cohort's page, from its tables (see the module docstring)."""
    validation = "external validation" if (metrics["split"] == "external").any() else "internal validation"
    sections = [paragraph(f"Model of dataset {model!r}; {validation}.", "note")]
    sections += [paragraph(text, "warning") for text in metric_warnings(metrics)]
    sections += [
        heading("Metrics, with 95% confidence intervals (their methods in ci_method)"),
        table(with_intervals(metrics.drop(columns="dataset"))),
        paragraph(METRICS_NOTE, "note"),
    ]
    if class_auc["class"].nunique() > 2:
        sections += [heading("One-vs-rest AUC per class"), table(with_intervals(class_auc))]
    sections += [heading("Confusion (rows: true class; columns: most probable class)"), table(confusion)]
    if crossval is not None:
        folds = crossval.loc[~crossval["fold"].astype(str).isin(["pooled", "mean"]), "fold"].nunique()
        sections += [
            heading(f"{folds}-fold cross-validation: out-of-fold predictions of unseen patients"),
            table(with_intervals(crossval.drop(columns="dataset"))),
            paragraph(CROSSVAL_NOTE, "note"),
        ]
    sections += [heading("Per slide (or image)"), table(items)]
    shown = [
        c for c in ("item", "patient_id", "site", "label", "tiles", "group", "split", "fold") if c in splits
    ]
    verdict = "passed" if leakage.get("ok") else "FAILED"
    balance = splits.groupby(["split", "label"]).size().unstack(fill_value=0)
    balance["patients"] = splits.groupby("split")["patient_id"].nunique()
    sections += [
        heading("Split membership"),
        table(balance.reset_index(), caption="items (slides or images) per split and label, and patients"),
        paragraph(f"Leakage check {verdict}: " + json.dumps({k: v for k, v in leakage.items() if k != "ok"})),
        table(splits[shown]),
    ]
    return sections
