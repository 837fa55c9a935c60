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


#: The column :func:`read_sheet` adds: each row's line in the sheet file (the header is line 1).
LINE = "sheet_line"


def read_sheet(path: str | Path) -> pd.DataFrame:
    """Read a slide sheet (tab-separated) with every column as text; empty cells become None.

    Lines whose first character is ``#`` are comments; a ``#`` inside a cell is kept. Column
    :data:`LINE` holds each row's line in the file, for messages. The ``mpp`` column is
    numeric; a value that is not a number (``0,3``) is kept as text for :func:`check_sheet`
    to report.

    Raises
    ------
    StudyError
        When the file is missing, empty, or has no header line.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: the slide sheet does not exist (config 'slides')"
        raise StudyError(msg)
    numbered = [
        (number, line)
        for number, line in enumerate(path.read_text().splitlines(keepends=True), start=1)
        if not line.startswith("#") and line.strip()
    ]
    if not numbered:
        msg = f"{path}: the slide sheet is empty; it needs a header {list(SHEET_COLUMNS)} and a row per slide"
        raise StudyError(msg)
    text = "".join(line for _, line in numbered)
    sheet = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False)
    sheet.columns = [c.strip() for c in sheet.columns]
    sheet = sheet.apply(lambda column: column.str.strip())
    sheet = sheet.replace("", None)
    sheet[LINE] = [number for number, _ in numbered[1:]]
    if "mpp" in sheet:
        numbers = pd.to_numeric(sheet["mpp"], errors="coerce")
        sheet["mpp"] = [
            n if pd.notna(n) or t is None else t for n, t in zip(numbers, sheet["mpp"], strict=True)
        ]
    return sheet


def rows_named(rows: pd.DataFrame, cap: int = 10) -> str:
    """The slides of some sheet rows with their lines, e.g. ``'A01' (line 2), 'A02' (line 3)``, capped."""
    named = [
        f"{slide_id!r} (line {line})" for slide_id, line in zip(rows["slide_id"], rows[LINE], strict=True)
    ]
    if len(named) > cap:
        return ", ".join(named[:cap]) + f" and {len(named) - cap} more"
    return ", ".join(named)


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
    if LINE not in sheet:
        sheet = sheet.assign(**{LINE: range(2, len(sheet) + 2)})
    for column in SHEET_COLUMNS:
        empty = sheet[sheet[column].isna()]
        if len(empty):
            problems.append(
                f"column '{column}' is empty in {rows_named(empty.fillna({'slide_id': '(no id)'}))}"
            )
    duplicated = sheet[sheet["slide_id"].duplicated(keep=False) & sheet["slide_id"].notna()]
    if len(duplicated):
        problems.append(f"slide_id not unique: {rows_named(duplicated)}")
    bad_ids = sheet[[s is not None and not SLIDE_ID.fullmatch(str(s)) for s in sheet["slide_id"]]]
    if len(bad_ids):
        problems.append(f"slide_id may hold only letters, digits, '-', '_' and '.': {rows_named(bad_ids)}")
    problems += _mpp_problems(sheet)
    datasets = config.get("datasets", {})
    cohorts = config.get("cohorts", {})
    unknown = sheet[sheet["dataset"].notna() & ~sheet["dataset"].isin([*datasets, *cohorts])]
    if len(unknown):
        problems.append(
            f"dataset(s) {sorted(set(unknown['dataset']))} of {rows_named(unknown)} are not in the config's "
            f"'datasets' {sorted(datasets)} or 'cohorts' {sorted(cohorts)}"
        )
    per_patient = sheet.groupby("patient_id")["dataset"].nunique()
    for patient in per_patient[per_patient > 1].index:
        rows = sheet[sheet["patient_id"] == patient]
        problems.append(
            f"patient {patient!r} has slides in several datasets {sorted(rows['dataset'].unique())}: "
            f"{rows_named(rows)}; a patient belongs to one"
        )
    for dataset, cfg in datasets.items():
        problems += _dataset_problems(sheet, dataset, cfg)
    problems += _site_problems(sheet, config)
    problems += _stain_reference_problems(config)
    for cohort, cfg in cohorts.items():
        if not cfg["slides"]:
            problems += _dataset_problems(sheet, cohort, cfg, "cohort")
    problems += _missing_files(sheet, config.get("demo_dir"))
    if problems:
        raise StudyError(listing(sheet_path, problems))


def _stain_reference_problems(config: Mapping[str, Any]) -> list[str]:
    """Every ``model: stain: reference`` (of the defaults, a dataset or a cohort's variant) exists."""
    places = [("model", config.get("model", {}))]
    places += [
        (f"datasets: {d}: model", cfg.get("model", {})) for d, cfg in config.get("datasets", {}).items()
    ]
    places += [
        (f"cohorts: {c}: variant", cfg.get("variant") or {}) for c, cfg in config.get("cohorts", {}).items()
    ]
    problems = []
    for key, settings in places:
        reference = (settings.get("stain") or {}).get("reference")
        if reference and not Path(reference).exists():
            problems.append(f"config '{key}: stain: reference': no such file or folder {reference}")
    return problems


def _site_problems(sheet: pd.DataFrame, config: Mapping[str, Any]) -> list[str]:
    """With site-preserving folds: the site column exists, is filled, and each dataset has enough sites."""
    splits = config.get("splits", {})
    column, folds = splits.get("site_column"), splits.get("folds", 1)
    if not column or folds < 2:
        return []
    slide_datasets = [
        d for d, cfg in config.get("datasets", {}).items() if cfg["labels"]["source"] != "patches"
    ]
    rows = sheet[sheet["dataset"].isin(slide_datasets)]
    if rows.empty:
        return []
    if column not in sheet:
        return [f"config 'splits: site_column' is {column!r}, but the sheet has no column {column!r}"]
    empty = rows[rows[column].isna()]
    if len(empty):
        return [f"column {column!r} (config 'splits: site_column') is empty in {rows_named(empty)}"]
    problems = []
    for dataset, part in rows.groupby("dataset"):
        sites = sorted(set(part[column].astype(str)))
        if len(sites) < folds:
            problems.append(
                f"dataset {dataset!r} has {len(sites)} site(s) {sites} in column {column!r} for {folds} "
                "folds; site-preserving folds need at least as many sites as folds "
                "(config 'splits: site_column', 'splits: folds')"
            )
    return problems


def _mpp_problems(sheet: pd.DataFrame) -> list[str]:
    """Sheet ``mpp`` values that are not positive numbers."""
    if "mpp" not in sheet:
        return []
    given = sheet[sheet["mpp"].notna()]
    wrong = given[[not isinstance(v, float | int) or not v > 0 for v in given["mpp"]]]
    if wrong.empty:
        return []
    values = sorted({f"{v:g}" if isinstance(v, float | int) else str(v) for v in wrong["mpp"]})
    hint = " (use a decimal point: 0.25, not 0,25)" if any("," in v for v in values) else ""
    return [f"column 'mpp' must be a positive number (um per pixel), not {values}{hint}: {rows_named(wrong)}"]


def _missing_files(sheet: pd.DataFrame, demo_dir: str | None) -> list[str]:
    """Slide and annotation files that do not exist (all of them; those the demo writes are not checked)."""
    problems = []
    for column in ("path", "annotations"):
        if column not in sheet:
            continue
        named = sheet[sheet[column].notna()]
        absent = named[
            [
                not (demo_dir is not None and Path(p).is_relative_to(demo_dir)) and not Path(p).exists()
                for p in named[column]
            ]
        ]
        if len(absent):
            what = "slide" if column == "path" else "annotation"
            shown = ", ".join(map(repr, absent[column].head(5)))
            problems.append(
                f"{len(absent)} {what} file(s) of column '{column}' do not exist: {rows_named(absent)}; e.g. "
                f"{shown} (a relative path starts at the study folder: where snakemake runs, or --directory)"
            )
    return problems


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
            problems.append(f"dataset {dataset!r} is a patch folder, but {rows_named(rows)} name it")
        if "patches" not in cfg:
            problems.append(f"dataset {dataset!r} labels from patches but has no 'patches' section")
        return problems
    if rows.empty:
        return [f"{kind} {dataset!r} has no slides in the sheet"]
    if labels["source"] == "annotations":
        lacking = rows[_column(sheet, "annotations").loc[rows.index].isna()]
        if len(lacking):
            return [
                f"{kind} {dataset!r} labels from annotations, but column 'annotations' is "
                f"empty in {rows_named(lacking)}"
            ]
        return []
    values = _column(sheet, "label").loc[rows.index]
    wrong = rows[[v not in labels["classes"] for v in values]]
    if len(wrong):
        return [
            f"{kind} {dataset!r} uses slide labels, but column 'label' is not one of "
            f"{labels['classes']} in {rows_named(wrong)}"
        ]
    return []
