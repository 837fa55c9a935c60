"""Cross-site performance: each model on another site's slides, one row per stain setting of the model.

A row comes from a cohort that predicts the slides of one dataset with the model of another
(``cohorts: <name>: {model: site_a, slides: site_b}``), with the dataset's own stain settings or a
``variant`` of them; its figures are the cohort's tile-level metrics (``results/reports/<cohort>/
metrics.tsv``: AUC and balanced accuracy with patient-bootstrap 95% CIs, their method, and the
row's note saying why a value or interval is missing), beside the model's own test values at its site
(``in_site_auc``, ``in_site_balanced_accuracy``), the reference that shows what moving site costs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .tables import StoredTable

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
    "in_site_auc",
    "in_site_balanced_accuracy",
)
_TEXT = ("model", "cohort", "stain", "evaluated_as", "level", "note")
#: ``results/reports/cross_site.tsv`` (rule ``cross_site``): :data:`COLUMNS`.
CROSS_SITE_TABLE = StoredTable(
    paths=("results/reports/cross_site.tsv",),
    columns={c: "text" if c in _TEXT or c.endswith("_method") else "number" for c in COLUMNS},
)


def cross_site_table(
    metrics: Mapping[str, pd.DataFrame],
    rows: Sequence[Mapping[str, Any]],
    *,
    in_site: Mapping[str, pd.DataFrame] | None = None,
    level: str = "tile",
) -> pd.DataFrame:
    """One row per cross-site cohort: its model, the slides' dataset, the model's stain setting, metrics.

    Parameters
    ----------
    metrics : Mapping of str to pandas.DataFrame
        Cohort name -> its ``metrics.tsv`` (split ``external``).
    rows : sequence of Mapping
        Per cohort: ``cohort`` (its name), ``model`` (the model's dataset), ``slides`` (the slides'
        dataset) and ``stain`` (:func:`slidesnake.settings.stain_label` of the model's settings).
    in_site : Mapping of str to pandas.DataFrame, optional
        Model (its dataset) -> its own ``metrics.tsv``: the test split's values are each row's reference
        (``in_site_auc``, ``in_site_balanced_accuracy``: the model at its own site).
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
                **{column: values.get(column) for column in COLUMNS[5:-2]},
                **_in_site((in_site or {}).get(row["model"]), level),
            }
        )
    table = pd.DataFrame(records, columns=list(COLUMNS))
    return table.sort_values(["model", "cohort", "stain"], kind="stable", ignore_index=True)


def _in_site(metrics: pd.DataFrame | None, level: str) -> dict[str, Any]:
    """A model's test-split AUC and balanced accuracy at its own site (None without its metrics)."""
    if metrics is None:
        return {"in_site_auc": None, "in_site_balanced_accuracy": None}
    found = metrics[(metrics["level"] == level) & (metrics["split"] == "test")]
    values = found.iloc[0].to_dict() if len(found) else {}
    return {"in_site_auc": values.get("auc"), "in_site_balanced_accuracy": values.get("balanced_accuracy")}
