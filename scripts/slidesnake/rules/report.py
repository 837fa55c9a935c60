"""Rules of ``workflow/rules/report.smk``: a dataset's metrics and figures, and the run's provenance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..entries import entry_keys, read_entries, unit
from ..io import read_table, write_table
from ..metrics import split_metrics
from ..plots import confusion_figure, roc_figure, training_curves_figure
from ..provenance import write_provenance


def evaluate(
    *,
    dataset: str,
    entries_tsv: str,
    prediction_tsvs: Sequence[str],
    classes: Sequence[str],
    positive_class: str,
    history_tsv: str,
    metrics_tsv: str,
    items_tsv: str,
    confusion_png: str,
    roc_png: str,
    curves_png: str,
) -> pd.DataFrame:
    """Rule ``evaluate``: metrics per split, a per-item table, confusion matrix, ROC and training curves.

    Metrics are over the labelled entries (tiles or images); ``items_tsv`` has
    one row per item (slide or image) with its entries, the share of them
    labelled ``positive_class``, the share predicted so and the mean probability.
    """
    entries = read_entries(entries_tsv)
    predictions = pd.concat(
        [read_table(path, keep_default_na=False) for path in prediction_tsvs], ignore_index=True
    )
    keys = entry_keys(entries)
    probability_columns = [f"p_{c}" for c in classes]
    scored = entries.merge(predictions[[*keys, *probability_columns]], on=keys, validate="one_to_one")
    p = f"p_{positive_class}"
    items = (
        scored.groupby(["item", "split"], sort=False)
        .agg(
            entries=(p, "size"),
            labelled_positive_fraction=("label", lambda s: float((s == positive_class).mean())),
            predicted_positive_fraction=(p, lambda s: float((s >= 0.5).mean())),
            mean_probability=(p, "mean"),
        )
        .round(4)
        .reset_index()
    )
    what = unit(entries)
    metrics = split_metrics(scored, classes, positive_class)
    metrics.insert(0, "dataset", dataset)
    metrics.insert(2, "unit", what)
    write_table(metrics, metrics_tsv)
    write_table(items, items_tsv)
    confusion_figure(scored[scored["split"] == "test"], classes, f"{dataset}: test {what}", confusion_png)
    roc_figure(scored, classes, positive_class, f"{dataset}: ROC of {positive_class} by split", roc_png)
    training_curves_figure(read_table(history_tsv), f"{dataset}: training", curves_png)
    return metrics


def provenance(
    *, config: Mapping[str, Any], sheet_paths: Sequence[str], workflow_dir: str, out_json: str
) -> None:
    """Rule ``provenance``: versions, workflow commit, platform, config and sheet checksum of this run."""
    write_provenance(config=config, sheet_paths=sheet_paths, workflow_dir=workflow_dir, out_json=out_json)
