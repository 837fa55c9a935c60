"""A t-SNE map of a model's features of labelled entries: the table ``results/reports/{dataset}/tsne.tsv``.

This module owns the table (:data:`TSNE_TABLE`) and makes it from the features (rule ``tsne`` runs the
model); the figure is :func:`slidesnake.plots.evaluation.embedding_figure`'s.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..tables import StoredTable

#: ``results/reports/{dataset}/tsne.tsv`` (rule ``tsne``): each drawn entry (a tile by its slide and grid
#: position, or an image) with its split, label and t-SNE coordinates.
TSNE_TABLE = StoredTable(
    paths=("results/reports/{dataset}/tsne.tsv",),
    columns={
        "item": "text",
        "row": "number",
        "col": "number",
        "split": "text",
        "label": "text",
        "tsne_1": "number",
        "tsne_2": "number",
    },
    optional=frozenset(("row", "col")),
)


def tsne_table(entries: pd.DataFrame, features: np.ndarray, *, seed: int) -> pd.DataFrame:
    """The entries (rows aligned with `features`, (entry, feature)) with their seeded t-SNE coordinates.

    The perplexity is 30, or a third of the entries where there are fewer than 91 (at least 2).
    """
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(entries) - 1) / 3)))
    points = TSNE(perplexity=perplexity, random_state=seed, init="pca").fit_transform(features)
    columns = [c for c in ("item", "row", "col", "split", "label") if c in entries]
    return entries[columns].assign(tsne_1=points[:, 0].round(3), tsne_2=points[:, 1].round(3))
