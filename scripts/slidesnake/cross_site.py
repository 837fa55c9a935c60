"""Cross-site performance: each model on another site's slides, one row per stain setting of the model.

A row comes from a cohort that predicts the slides of one dataset with the model of another
(``cohorts: <name>: {model: site_a, slides: site_b}``), with the dataset's own stain settings or a
``variant`` of them; its figures are the cohort's tile-level metrics (``results/reports/<cohort>/
metrics.tsv``: AUC and balanced accuracy with patient-bootstrap 95% CIs, their method, and the
row's note saying why a value or interval is missing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

#: The columns of ``results/reports/cross_site.tsv``, in order.
COLUMNS = (
    "model",
    "cohort",
    "stain",
    "evaluated_as",
    "level",
    "n",
    "patients",
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "auc_ci_method",
    "balanced_accuracy",
    "balanced_accuracy_ci_low",
    "balanced_accuracy_ci_high",
    "balanced_accuracy_ci_method",
    "note",
)


def cross_site_table(
    metrics: Mapping[str, pd.DataFrame], rows: Sequence[Mapping[str, Any]], *, level: str = "tile"
) -> pd.DataFrame:
    """One row per cross-site cohort: its model, the slides' dataset, the model's stain setting, metrics.

    Parameters
    ----------
    metrics : Mapping of str to pandas.DataFrame
        Cohort name -> its ``metrics.tsv`` (split ``external``).
    rows : sequence of Mapping
        Per cohort: ``cohort`` (its name), ``model`` (the model's dataset), ``slides`` (the slides'
        dataset) and ``stain`` (:func:`slidesnake.settings.stain_label` of the model's settings).
    level : str
        The metrics' level (``tile``, ``slide`` or ``patient``).

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`, sorted by model, cohort and stain; NaN metrics where a level has none.
    """
    records = []
    for row in rows:
        table = metrics[row["cohort"]]
        found = table[(table["level"] == level) & (table["split"] == "external")]
        values = found.iloc[0].to_dict() if len(found) else {}
        records.append(
            {
                "model": row["model"],
                "cohort": row["slides"],
                "stain": row["stain"],
                "evaluated_as": row["cohort"],
                "level": level,
                **{column: values.get(column) for column in COLUMNS[5:]},
            }
        )
    table = pd.DataFrame(records, columns=list(COLUMNS))
    return table.sort_values(["model", "cohort", "stain"], kind="stable", ignore_index=True)
