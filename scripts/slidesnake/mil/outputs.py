"""What rule ``train_mil`` stores besides its networks: the out-of-fold predictions and the attention.

This module owns the two tables; :mod:`.crossval` makes them, :mod:`.evaluation` and rule ``mil_report``
read them (without Keras).
"""

from __future__ import annotations

from ..tables import StoredTable

#: ``results/mil/{dataset}/predictions.tsv`` (rule ``train_mil``): each bag's class probabilities
#: (``p_<class>``) from each network (fold, pooling, seed) that did not train on it, split ``oof`` or
#: ``test``.
MIL_PREDICTIONS_TABLE = StoredTable(
    paths=("results/mil/{dataset}/predictions.tsv",),
    columns={
        "bag": "text",
        "patient_id": "text",
        "label": "text",
        "split": "text",
        "fold": "number",
        "pooling": "text",
        "seed": "number",
    },
    more="number",
    more_prefix="p_",
)

#: ``results/mil/{dataset}/attention.tsv`` (rule ``train_mil``): the attention of each tile of each
#: out-of-fold bag (a tile by its slide and level-0 corner), per seed.
ATTENTION_TABLE = StoredTable(
    paths=("results/mil/{dataset}/attention.tsv",),
    columns={
        "bag": "text",
        "slide_id": "text",
        **dict.fromkeys(("x0", "y0", "fold", "seed", "attention"), "number"),
    },
)
