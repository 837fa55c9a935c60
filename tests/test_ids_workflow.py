"""Slide and patient ids that look like numbers or missing values stay the text the sheet says, in every
table, title and page the workflow writes; an excluded slide is carried through by its id too."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
import pytest
from corrupt import truncate
from workflow_runs import check_stored_tables, make_workdir, small_demo_sheet, snakemake

pytestmark = pytest.mark.workflow

#: The small demo slides renamed: ids pandas, Excel or YAML would read as numbers, booleans or missing.
SLIDE_IDS = {
    "A01": "007", "A02": "7", "A03": "1e3", "A04": "1000", "A05": "NA", "A06": "001",
    "B01": "1", "B02": "1.0", "B03": "nan", "B04": "TRUE", "B05": "0x10", "B06": "-0",
}  # fmt: skip
PATIENT_IDS = {
    "PA1": "001", "PA2": "1.0", "PA3": "1e3", "PA4": "010",
    "PB1": "007", "PB2": "10.0", "PB3": "NA", "PB4": "null",
}  # fmt: skip
# site_a's patients all look like numbers: read as numbers, "010" would be site_b's "10.0", and the
# cohorts of site_b's slides by site_a's model would stop as overlapping its training data
#: A slide whose file is cut short: excluded, its row kept.
EXCLUDED = "0100"


@pytest.fixture(scope="module")
def id_study(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ids")
    sheet = pd.read_csv(small_demo_sheet(folder), sep="\t", dtype=str, keep_default_na=False)
    sheet["slide_id"] = sheet["slide_id"].map(SLIDE_IDS)
    sheet["patient_id"] = sheet["patient_id"].map(PATIENT_IDS)
    broken = sheet.iloc[[0]].assign(slide_id=EXCLUDED, patient_id="0100", path=str(folder / "cut.svs"))
    truncate(Path(sheet["path"].iloc[0]), folder / "cut.svs", keep=0.3)
    sheet = pd.concat([sheet, broken], ignore_index=True)
    sheet.to_csv(folder / "ids.tsv", sep="\t", index=False, quoting=csv.QUOTE_NONE)
    workdir = make_workdir(folder / "run", folder / "ids.tsv")
    done = snakemake(workdir, "--cores", "2")
    assert done.returncode == 0, done.stderr[-5000:]
    check_stored_tables(workdir)
    return workdir


def _text_columns(path: Path) -> dict[str, list[str]]:
    """The columns of a tab-separated table as the raw text of its cells."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    return {name: [row[k] for row in rows[1:]] for k, name in enumerate(rows[0])}


def test_every_table_keeps_the_ids_as_written(id_study) -> None:
    slides, patients = set(SLIDE_IDS.values()) | {EXCLUDED}, set(PATIENT_IDS.values()) | {"0100"}
    checked = 0
    for table in sorted((id_study / "results").rglob("*.tsv")):
        columns = _text_columns(table)
        for column, known in (("slide_id", slides), ("patient_id", patients)):
            values = {v for v in columns.get(column, []) if v}
            assert values <= known, f"{table}: {column} {sorted(values - known)}"
            checked += bool(values)
    assert checked >= 8
    audit = _text_columns(id_study / "results" / "slides.tsv")
    assert sorted(audit["slide_id"]) == sorted(slides)
    status = dict(zip(audit["slide_id"], audit["status"], strict=True))
    assert status.pop(EXCLUDED) == "excluded" and set(status.values()) == {"ok"}


def test_every_slide_has_its_own_outputs_by_its_id(id_study) -> None:
    for slide_id in SLIDE_IDS.values():
        assert (id_study / "results" / "tiles" / f"{slide_id}.zarr").is_dir()
        assert (id_study / "results" / "heatmaps" / f"{slide_id}.jpg").is_file()
    splits = _text_columns(id_study / "results" / "splits" / "site_a.tsv")
    split_of = dict(zip(splits["item"], splits["split"], strict=True))
    assert split_of.pop(EXCLUDED) == "excluded"  # kept, by its id, out of every split
    assert set(split_of) == {"007", "7", "1e3", "1000", "NA", "001"} and "excluded" not in split_of.values()


def test_pages_name_the_slides_as_written(id_study) -> None:
    report = (id_study / "results" / "reports" / "study.html").read_text(encoding="utf-8")
    assert re.search(rf"\b{EXCLUDED}\b", report)  # the excluded slide, listed at the top
    page = (id_study / "results" / "reports" / "site_a" / "summary.html").read_text(encoding="utf-8")
    cells = set(re.findall(r"<td class='text'>([^<]*)</td>", page))
    assert {"007", "7", "1e3", "1000", "NA", "001"} <= cells  # site_a's slides
    assert {"001", "1.0", "1e3", "010"} <= cells  # and patients
    assert not {"7.0", "1000.0", "nan"} & cells
