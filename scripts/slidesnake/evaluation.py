"""Rule function of stage 8: metrics per split and the figures of a dataset's report."""

from __future__ import annotations

import pandas as pd

from .io import read_table, write_table


def evaluate_dataset(
    dataset: str,
    classes: list[str],
    positive_class: str,
    history_tsv: str,
    metrics_tsv: str,
    items_tsv: str,
    confusion_png: str,
    roc_png: str,
    curves_png: str,
    split_tsv: str | None = None,
    label_tsvs: dict[str, str] | None = None,
    tile_tsvs: dict[str, str] | None = None,
    patches_tsv: str | None = None,
) -> pd.DataFrame:
    """Rule ``evaluate``: metrics per split, a per-item table, confusion matrix, ROC and training curves.

    Slide datasets pass ``split_tsv``, ``label_tsvs`` and ``tile_tsvs``: metrics
    are over labelled tiles and ``items_tsv`` has one row per slide. Patch
    datasets pass ``patches_tsv``: metrics are over images and ``items_tsv`` is
    a copy of the predictions.
    """
    from .metrics import split_metrics
    from .plots import confusion_figure, roc_figure, training_curves_figure

    p = f"p_{positive_class}"
    if patches_tsv is not None:
        scored = read_table(patches_tsv, keep_default_na=False)
        items = scored
        unit = "images"
    else:
        split_table = read_table(split_tsv, keep_default_na=False)
        parts = []
        for slide_id, split in zip(split_table["item"], split_table["split"], strict=True):
            labels = read_table(label_tsvs[slide_id], keep_default_na=False)[["row", "col", "label"]]
            predicted = read_table(tile_tsvs[slide_id])
            parts.append(predicted.merge(labels, on=["row", "col"]).assign(slide_id=slide_id, split=split))
        scored = pd.concat(parts, ignore_index=True)
        items = (
            scored.groupby(["slide_id", "split"])
            .agg(
                tiles=(p, "size"),
                true_positive_fraction=("label", lambda s: float((s == positive_class).mean())),
                predicted_positive_fraction=(p, lambda s: float((s >= 0.5).mean())),
                mean_probability=(p, "mean"),
            )
            .round(4)
            .reset_index()
        )
        unit = "tiles"
    labelled = scored[scored["label"].isin(classes)]
    metrics = split_metrics(labelled, classes, positive_class)
    metrics.insert(0, "dataset", dataset)
    metrics.insert(2, "unit", unit)
    write_table(metrics, metrics_tsv)
    write_table(items, items_tsv)
    confusion_figure(labelled[labelled["split"] == "test"], classes, f"{dataset}: test {unit}", confusion_png)
    roc_figure(labelled, classes, positive_class, f"{dataset}: ROC of {positive_class} by split", roc_png)
    training_curves_figure(read_table(history_tsv), f"{dataset}: training", curves_png)
    return metrics
