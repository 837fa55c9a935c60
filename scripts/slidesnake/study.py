"""Load and check a study's slide sheet against its config, before any job starts."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import StudyError, listing

#: Columns every slide sheet has (see config/README.md for the optional ones).
SHEET_COLUMNS = ("slide_id", "patient_id", "dataset", "path")
#: Slide ids become file names: ASCII letters, digits, '-', '_' and '.' only (as in the sheet schema).
SLIDE_ID = re.compile(r"[A-Za-z0-9_.-]+")


def empty_sheet() -> pd.DataFrame:
    """A sheet without slides, for studies made of patch-folder datasets only."""
    return pd.DataFrame(columns=list(SHEET_COLUMNS), dtype=str)


def read_sheet(path: str | Path) -> pd.DataFrame:
    """Read a slide sheet (tab-separated) with every column as text; empty cells become None.

    Lines whose first character is ``#`` are comments; a ``#`` inside a cell is kept.
    The ``mpp`` column is numeric; a value that is not a number is left as text
    for :func:`check_sheet` to report.
    """
    lines = [line for line in Path(path).read_text().splitlines(keepends=True) if not line.startswith("#")]
    sheet = pd.read_csv(io.StringIO("".join(lines)), sep="\t", dtype=str, keep_default_na=False)
    sheet.columns = [c.strip() for c in sheet.columns]
    sheet = sheet.apply(lambda column: column.str.strip())
    sheet = sheet.replace("", None)
    if "mpp" in sheet:
        sheet["mpp"] = pd.to_numeric(sheet["mpp"], errors="coerce")
    return sheet


def check_sheet(sheet: pd.DataFrame, config: Mapping[str, Any], sheet_path: str = "slide sheet") -> None:
    """Check a slide sheet against the config and raise one error listing every problem.

    Checks: required columns and values, unique slide ids, known datasets, no
    patient in two datasets, an annotation file for slides of annotation
    datasets and a known class for slides of slide-label datasets.

    Raises
    ------
    StudyError
        Naming the sheet, the slides and the columns at fault.
    """
    problems: list[str] = []
    missing = [c for c in SHEET_COLUMNS if c not in sheet]
    if missing:
        msg = f"{sheet_path}: missing column(s) {missing}; the sheet needs {list(SHEET_COLUMNS)}"
        raise StudyError(msg)
    for column in SHEET_COLUMNS:
        empty = sheet.loc[sheet[column].isna(), "slide_id"].fillna("(no id)").tolist()
        if empty:
            problems.append(f"column '{column}' is empty for slide(s) {empty}")
    duplicated = sorted(set(sheet.loc[sheet["slide_id"].duplicated(), "slide_id"]))
    if duplicated:
        problems.append(f"slide_id not unique: {duplicated}")
    bad_ids = [s for s in sheet["slide_id"].dropna() if not SLIDE_ID.fullmatch(str(s))]
    if bad_ids:
        problems.append(f"slide_id may hold only letters, digits, '-', '_' and '.': {bad_ids}")
    datasets = config.get("datasets", {})
    cohorts = config.get("cohorts", {})
    unknown = sorted(set(sheet["dataset"].dropna()) - set(datasets) - set(cohorts))
    if unknown:
        problems.append(
            f"dataset(s) {unknown} are not in the config's 'datasets' {sorted(datasets)} "
            f"or 'cohorts' {sorted(cohorts)}"
        )
    per_patient = sheet.groupby("patient_id")["dataset"].nunique()
    for patient in per_patient[per_patient > 1].index:
        names = sorted(sheet.loc[sheet["patient_id"] == patient, "dataset"].unique())
        problems.append(
            f"patient {patient!r} has slides in several datasets {names}; a patient belongs to one"
        )
    for dataset, cfg in datasets.items():
        problems += _dataset_problems(sheet, dataset, cfg)
    for cohort, cfg in cohorts.items():
        if not cfg["slides"]:
            problems += _dataset_problems(sheet, cohort, cfg, "cohort")
    if problems:
        raise StudyError(listing(sheet_path, problems))


def _column(sheet: pd.DataFrame, name: str) -> pd.Series:
    return sheet[name] if name in sheet else pd.Series(None, index=sheet.index, dtype=object)


def _dataset_problems(
    sheet: pd.DataFrame, dataset: str, cfg: Mapping[str, Any], kind: str = "dataset"
) -> list[str]:
    """The sheet's problems with the slides of one dataset (or of a cohort with its own slides)."""
    rows = sheet[sheet["dataset"] == dataset]
    labels = cfg["labels"]
    if labels is None:  # an unlabelled cohort: slides to predict, nothing to check against
        return [] if len(rows) else [f"cohort {dataset!r} has no slides in the sheet"]
    if labels["source"] == "patches":
        problems = []
        if len(rows):
            problems.append(
                f"dataset {dataset!r} is a patch folder, but slide(s) {rows['slide_id'].tolist()} name it"
            )
        if "patches" not in cfg:
            problems.append(f"dataset {dataset!r} labels from patches but has no 'patches' section")
        return problems
    if rows.empty:
        return [f"{kind} {dataset!r} has no slides in the sheet"]
    if labels["source"] == "annotations":
        lacking = rows.loc[_column(sheet, "annotations").loc[rows.index].isna(), "slide_id"].tolist()
        if lacking:
            return [
                f"{kind} {dataset!r} labels from annotations, but column 'annotations' is "
                f"empty for slide(s) {lacking}"
            ]
        return []
    values = _column(sheet, "label").loc[rows.index]
    wrong = [s for s, v in zip(rows["slide_id"], values, strict=True) if v not in labels["classes"]]
    if wrong:
        return [
            f"{kind} {dataset!r} uses slide labels, but column 'label' is not one of "
            f"{labels['classes']} for slide(s) {wrong}"
        ]
    return []
