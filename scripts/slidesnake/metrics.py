"""Classification metrics of labelled tiles, per split."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score


def split_metrics(tiles: pd.DataFrame, classes: list[str], positive_class: str) -> pd.DataFrame:
    """Accuracy, balanced accuracy, F1 and ROC AUC of tiles, one row per split.

    Parameters
    ----------
    tiles : pandas.DataFrame
        Columns ``split``, ``item``, ``label`` and ``p_<class>`` for every class.
    classes : list of str
        Class names in model output order.
    positive_class : str
        The class whose probability the AUC and F1 score.

    Returns
    -------
    pandas.DataFrame
        Columns ``split``, ``n`` (tiles or images), ``items`` (slides or images),
        ``accuracy``, ``balanced_accuracy``, ``f1``, ``auc``
        (NaN where a split has a single class).
    """
    rows = []
    for split in ("train", "val", "test"):
        part = tiles[tiles["split"] == split]
        if part.empty:
            continue
        probabilities = part[[f"p_{c}" for c in classes]].to_numpy()
        predicted = np.asarray(classes)[probabilities.argmax(axis=1)]
        truth = part["label"].to_numpy()
        positive = truth == positive_class
        both = 0 < positive.sum() < len(positive)
        row = {"split": split, "n": len(part), "items": part["item"].nunique()}
        rows.append(
            row
            | {
                "accuracy": accuracy_score(truth, predicted),
                "balanced_accuracy": balanced_accuracy_score(truth, predicted) if both else np.nan,
                "f1": f1_score(positive, predicted == positive_class, zero_division=0),
                "auc": roc_auc_score(positive, part[f"p_{positive_class}"]) if both else np.nan,
            }
        )
    return pd.DataFrame(rows).round(4)
