"""Load and check a study's slide sheet against its config, before any job starts."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import StudyError, listing
from .io import atomic_path

#: Columns every slide sheet has (see config/README.md for the optional ones).
SHEET_COLUMNS = ("slide_id", "patient_id", "dataset", "path")
#: Slide ids become file names: ASCII letters, digits, '-', '_' and '.' only (as in the sheet schema).
SLIDE_ID = re.compile(r"[A-Za-z0-9_.-]+")


def write_sheet(sheet: pd.DataFrame, path: str | Path) -> None:
    """Write a slide sheet as :func:`read_sheet` reads it (tab-separated, UTF-8, no index), atomically."""
    with atomic_path(path) as tmp:
        sheet.to_csv(tmp, sep="\t", index=False)


def empty_sheet() -> pd.DataFrame:
    """A sheet without slides, for studies made of patch-folder datasets only."""
    return pd.DataFrame(columns=list(SHEET_COLUMNS), dtype=str)


#: The column :func:`read_sheet` adds: each row's line in the sheet file (the header is line 1).
LINE = "sheet_line"


def read_sheet(path: str | Path) -> pd.DataFrame:
    """Read a slide sheet (tab-separated) with every column as text; empty cells become None.

    The file is UTF-8, with or without a byte order mark, or UTF-16 with one (Excel's "Unicode
    Text"); lines end in LF, CRLF or CR. Lines whose first character is ``#`` are comments; a ``#``
    inside a cell is kept. A cell may be quoted (``"a b"``) but holds one line. Empty cells beyond
    the header's last column (a trailing tab) are dropped, as are empty trailing header cells; a
    row with fewer cells than the header is padded with empty ones. Column :data:`LINE` holds each
    row's line in the file, for messages. The ``mpp`` column is numeric; a value that is not a
    number (``0,3``) is kept as text for :func:`check_sheet` to report.

    Raises
    ------
    StudyError
        When the file is missing, empty, not UTF-8 or UTF-16 text, has no header line, or has
        rows that do not fit the header (naming every such line and its extra cells).
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: the slide sheet does not exist (config 'slides')"
        raise StudyError(msg)
    numbered = [
        (number, line)
        for number, line in enumerate(LINE_BREAK.split(_decode(path, path.read_bytes())), start=1)
        if not line.startswith("#") and line.strip()
    ]
    if not numbered:
        msg = f"{path}: the slide sheet is empty; it needs a header {list(SHEET_COLUMNS)} and a row per slide"
        raise StudyError(msg)
    header, rows = _fit_rows(path, [(number, _cells(line)) for number, line in numbered])
    sheet = pd.DataFrame([cells for _, cells in rows], columns=header, dtype=str).replace("", None)
    sheet[LINE] = [number for number, _ in rows]
    if "mpp" in sheet:
        numbers = pd.to_numeric(sheet["mpp"], errors="coerce")
        sheet["mpp"] = [
            n if pd.notna(n) or t is None else t for n, t in zip(numbers, sheet["mpp"], strict=True)
        ]
    return sheet


#: Line ends of a sheet: LF, CRLF (Windows) and CR (old Mac Excel).
LINE_BREAK = re.compile(r"\r\n|\r|\n")
#: The encodings a sheet may be in, by its byte order mark (the codec, the name in messages).
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
#: How to fix a sheet that is not text slidesnake reads.
SAVE_AS = (
    "save the sheet as UTF-8 (tab-separated); from Excel 'Unicode Text (*.txt)' works too, "
    "from LibreOffice 'Text CSV' with character set 'Unicode (UTF-8)' and field delimiter '{Tab}'"
)


def _decode(path: Path, data: bytes) -> str:
    """A sheet file's text: UTF-8, or the encoding its byte order mark names (the mark dropped).

    Raises
    ------
    StudyError
        Naming the file and the first line that is not text in that encoding, or that holds a NUL
        character (UTF-16 without a byte order mark, or not a text file).
    """
    codec, name = next(((c, n) for bom, c, n in BYTE_ORDER_MARKS if data.startswith(bom)), ("utf-8", "UTF-8"))
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as err:
        line = _line_of(data[: err.start].decode(codec, errors="replace"))
        msg = f"{path}: line {line} is not {name} text (byte {data[err.start]:#04x}); {SAVE_AS}"
        raise StudyError(msg) from None
    if "\x00" in text:
        line = _line_of(text[: text.index("\x00")])
        msg = f"{path}: line {line} holds NUL characters (UTF-16 without a byte order mark?); {SAVE_AS}"
        raise StudyError(msg)
    return text


def _line_of(text: str) -> int:
    """The line (from 1) that follows ``text``, the start of a file."""
    return len(LINE_BREAK.findall(text)) + 1


def _cells(line: str) -> list[str] | csv.Error:
    """The stripped cells of one sheet line (tab-separated, quotes as Excel writes them), or why not."""
    try:
        (cells,) = csv.reader([line], delimiter="\t", strict=True)
    except csv.Error as err:
        return err
    return [cell.strip() for cell in cells]


#: What is wrong with a line that csv cannot split (an unclosed quote, text after a closing one).
QUOTES = (
    "a cell that starts with a quote (\") must end with one just before the next tab or the line's end; "
    "a cell holds one line of text"
)


def _fit_rows(
    path: Path, lines: list[tuple[int, list[str] | csv.Error]]
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header's column names and each row's cells, one per column, with their line numbers.

    Empty cells beyond the header are dropped; short rows are padded with empty cells.

    Raises
    ------
    StudyError
        Listing every line that csv cannot split, every row with a non-empty cell beyond the
        header's last column, and a header without names or with repeated ones.
    """
    (header_line, header), *rows = lines
    problems = [f"line {n}: {QUOTES}" for n, cells in lines if isinstance(cells, csv.Error)]
    names = [] if isinstance(header, csv.Error) else _column_names(header)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        problems.append(f"line {header_line}: column(s) {repeated} appear more than once in the header")
    if not names and not isinstance(header, csv.Error):
        problems.append(f"line {header_line}: the header names no columns")
    if not names or repeated:
        raise StudyError(listing(str(path), problems))
    fitted = []
    for number, cells in rows:
        if isinstance(cells, csv.Error):
            continue
        extra = [cell for cell in cells[len(names) :] if cell]
        if extra:
            problems.append(
                f"line {number}: {len(cells)} cells for the {len(names)} columns of the header (line "
                f"{header_line}); extra cell(s) {extra} beyond column {names[-1]!r} (a tab inside a cell?)"
            )
        fitted.append((number, (cells + [""] * len(names))[: len(names)]))
    if problems:
        raise StudyError(listing(str(path), problems))
    return names, fitted


def _column_names(header: list[str]) -> list[str]:
    """A header's column names: empty trailing cells dropped, other empty ones ``Unnamed: <k>``."""
    while header and not header[-1]:
        header = header[:-1]
    return [name or f"Unnamed: {k}" for k, name in enumerate(header)]


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

    Checks: required columns and values, unique slide ids (also ignoring case), known datasets, no
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
    problems += _duplicate_ids(sheet)
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


def _duplicate_ids(sheet: pd.DataFrame) -> list[str]:
    """Slide ids used twice, and ids that differ only in case (one group of rows per line).

    ``A01`` and ``a01`` would share one slide folder on a case-insensitive file system (macOS,
    Windows, SMB shares).
    """
    ids = sheet[sheet["slide_id"].notna()]
    problems = []
    duplicated = ids[ids["slide_id"].duplicated(keep=False)]
    if len(duplicated):
        problems.append(f"slide_id not unique: {rows_named(duplicated)}")
    folded = ids["slide_id"].astype(str).str.lower()
    alike = ids[folded.duplicated(keep=False)]
    for _, rows in alike.groupby(folded[alike.index], sort=False):
        if rows["slide_id"].nunique() > 1:
            problems.append(
                f"slide_id differ only in case: {rows_named(rows)}; they would share one folder on macOS, "
                "Windows and SMB shares (rename one)"
            )
    return problems


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
