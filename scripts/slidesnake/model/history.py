"""A model's training history, ``history.tsv``: one row per epoch with its losses and metrics.

This module owns the table (:data:`HISTORY_TABLE`); training writes it and the report's training curves
read it, without importing Keras.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from ..tables import StoredTable

#: ``history.tsv`` of a model (rules ``train``, ``train_variant``, ``train_regime``, ``train_fold``; a
#: cross-validated dataset's joins its folds' with ``fold``; ``train_mil``'s has every network's, with
#: ``fold``, ``pooling``, ``seed`` and ``best``, its lowest validation loss): ``epoch`` (from 1), the
#: ``phase`` of a fine-tuned model (``frozen``, then ``trained``), and the loss and metrics Keras logged
#: (``val_``: the validation split); a linear probe's has a row per regularisation ``c`` tried instead of
#: epochs, the ``chosen`` one marked.
HISTORY_TABLE = StoredTable(
    paths=(
        "results/models/{dataset}/history.tsv",
        "results/models/{dataset}/variants/{cohort}/history.tsv",
        "results/models/{dataset}/regimes/{regime}/history.tsv",
        "results/models/{dataset}/folds/{fold}/history.tsv",
        "results/mil/{dataset}/history.tsv",
    ),
    columns={
        "epoch": "number",
        "phase": "text",
        "c": "number",
        "chosen": "bool",
        "fold": "number",
        "pooling": "text",
        "seed": "number",
        "best": "bool",
    },
    optional=frozenset(("epoch", "phase", "c", "chosen", "fold", "pooling", "seed", "best")),
    more="number",
)


def epoch_table(logs: Mapping[str, Sequence[float]], epochs: Sequence[int], phase: str) -> pd.DataFrame:
    """One phase of a Keras training as history rows: ``epoch`` (as Keras counts them, from 0), ``phase``
    and one column per logged value (Keras' ``History.history``)."""
    table = pd.DataFrame(dict(logs))
    table.insert(0, "phase", phase)
    table.insert(0, "epoch", list(epochs))
    return table
