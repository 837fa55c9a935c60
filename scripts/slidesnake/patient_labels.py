"""Patient label tables (``labels: {source: patients, table, column}``): a slide takes its patient's label.

The table is a CSV (or, named ``.tsv``/``.txt``, tab-separated) with a ``patient_id`` column and the label
column, as Excel writes it (a UTF-8 byte-order mark is fine). Ids are text: ``007`` stays ``007``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import StudyError, listing
from .study import LINE, rows_named


def read_patient_table(path: Path) -> pd.DataFrame:
    """A patient table, every cell text, with the line of each row in the file (``line``)."""
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    table.columns = [str(c).strip() for c in table.columns]
    return table.assign(line=range(2, len(table) + 2))


def _lines(rows: pd.DataFrame, column: str) -> str:
    shown = [f"line {line} ({value!r})" for line, value in zip(rows["line"], rows[column], strict=True)]
    return ", ".join(shown[:10]) + (f" and {len(shown) - 10} more" if len(shown) > 10 else "")


def _table_problems(
    table: pd.DataFrame, rows: pd.DataFrame, *, dataset: str, column: str, classes: list[str], where: str
) -> list[str]:
    problems = []
    doubled = table[table["patient_id"].duplicated(keep=False)]
    if len(doubled):
        problems.append(f"{where}: patients listed more than once: {_lines(doubled, 'patient_id')}")
    extra = table[~table["patient_id"].isin(set(rows["patient_id"]))]
    if len(extra):
        problems.append(
            f"{where}: patients not in the sheet's dataset {dataset!r}: {_lines(extra, 'patient_id')}"
        )
    wrong = table[~table[column].isin(classes)]
    if len(wrong):
        problems.append(f"{where}: column {column!r} is not one of {classes}: {_lines(wrong, column)}")
    missing = rows[~rows["patient_id"].isin(set(table["patient_id"]))]
    if len(missing):
        problems.append(f"{where}: no row for the patients of {rows_named(missing)}")
    return problems


def with_patient_labels(sheet: pd.DataFrame, config: Mapping[str, Any]) -> pd.DataFrame:
    """The sheet with column ``label`` filled in, for the slides of every dataset labelled from patients.

    Parameters
    ----------
    sheet : pandas.DataFrame
        The slide sheet (as read, with its ``line`` column).
    config : Mapping
        The validated config; relative table paths start at the working directory (the study folder).

    Raises
    ------
    StudyError
        Every problem of every table, one line each, naming the table, its line and the key: a missing
        file or column, a patient twice, a patient not in the sheet, a label not among the classes, a
        sheet patient without a row.
    """
    problems = []
    out = sheet.copy()
    if LINE not in out:
        out[LINE] = range(2, len(out) + 2)
    if "label" not in out:
        out["label"] = pd.Series(None, index=out.index, dtype=object)
    for dataset, section in config["datasets"].items():
        labels = section["labels"]
        if labels["source"] != "patients":
            continue
        where = f"datasets: {dataset}: labels"
        if not labels.get("table") or not labels.get("column"):
            problems.append(f"{where}: source patients needs 'table' (a CSV or TSV) and 'column'")
            continue
        path, column = Path(labels["table"]), labels["column"]
        if not path.is_file():
            problems.append(f"{where}: table: {path} does not exist")
            continue
        table = read_patient_table(path)
        absent = [c for c in ("patient_id", column) if c not in table]
        if absent:
            found_columns = list(table.columns)[:-1]
            problems.append(f"{where}: table {path} has no column(s) {absent} (it has {found_columns})")
            continue
        rows = out[out["dataset"] == dataset]
        classes = list(labels["classes"])
        found = _table_problems(
            table, rows, dataset=dataset, column=column, classes=classes, where=f"{where}: {path}"
        )
        problems += found
        if not found:
            of_patient = dict(zip(table["patient_id"], table[column], strict=True))
            out.loc[rows.index, "label"] = rows["patient_id"].map(of_patient)
    if problems:
        raise StudyError(listing("config: patient label tables", problems))
    return out.drop(columns=LINE) if LINE not in sheet else out
