"""Tests for slidesnake.study: slide sheets written to tmp_path, checked against config/config.yaml."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, SCHEMA, validated_config
from slidesnake.config import validate_config
from slidesnake.errors import StudyError
from slidesnake.settings import model_settings, stain_label
from slidesnake.study import SHEET_COLUMNS, check_sheet, read_sheet

HEADER = "slide_id\tpatient_id\tdataset\tpath\tannotations"
GOOD_ROWS = [
    "A01\tPA1\tsite_a\ts/A01.svs\ts/A01.geojson",
    "A02\tPA1\tsite_a\ts/A02.svs\ts/A02.geojson",
    "B01\tPB1\tsite_b\ts/B01.svs\ts/B01.geojson",
]


@pytest.fixture
def config() -> dict:
    """The committed config without site_c (the sheets below hold slides of site_a and site_b)."""
    config = validated_config()
    del config["datasets"]["site_c"]
    return config


@pytest.fixture
def slide_label_config(config: dict) -> dict:
    """The committed config plus a dataset labelled per slide."""
    config = copy.deepcopy(config)
    config["datasets"]["site_c"] = {
        "labels": {"source": "slide", "classes": ["benign", "malignant"]},
        "positive_class": "malignant",
    }
    return config


@pytest.fixture(autouse=True)
def in_study_folder(tmp_path, monkeypatch):
    """Sheet paths are relative to the study folder, where Snakemake runs: here, tmp_path."""
    monkeypatch.chdir(tmp_path)


def _sheet(tmp_path: Path, rows: list[str], header: str = HEADER, files: bool = True) -> pd.DataFrame:
    """Write and read a sheet; with ``files`` its slide and annotation files are created too."""
    path = tmp_path / "slides.tsv"
    path.write_text("\n".join([header, *rows]) + "\n")
    columns = header.split("\t")
    for row in rows if files else []:
        for column, value in zip(columns, row.split("\t"), strict=False):
            if column in ("path", "annotations") and value:
                (tmp_path / value).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / value).touch()
    return read_sheet(path)


def _problems(sheet: pd.DataFrame, config: dict) -> str:
    with pytest.raises(StudyError) as caught:
        check_sheet(sheet, config, "my/slides.tsv")
    message = str(caught.value)
    assert message.startswith("my/slides.tsv")
    return message


# ----------------------------------------------------------------------------- read_sheet


def test_committed_sheet_passes_the_committed_config():
    config = validated_config()
    sheet = read_sheet(ROOT / config["slides"])
    assert list(sheet.columns[:4]) == list(SHEET_COLUMNS)
    assert len(sheet) == 56 and sheet["slide_id"].is_unique
    assert set(sheet["dataset"]) == set(config["datasets"])
    check_sheet(sheet, config, config["slides"])


def test_read_sheet_strips_text_and_makes_empty_cells_missing(tmp_path):
    path = tmp_path / "slides.tsv"
    path.write_text(
        "# comment line\n"
        " slide_id \tpatient_id\tdataset\tpath\tannotations\tlabel\tmpp\n"
        " 007 \t P1\tsite_a\ta.svs \t\t\t0.25\n"
        "008\tP2\tsite_a\tb.svs\tb.geojson\ttumor\t\n"
    )
    sheet = read_sheet(path)
    columns = ["slide_id", "patient_id", "dataset", "path", "annotations", "label", "mpp", "sheet_line"]
    assert list(sheet.columns) == columns
    assert sheet["sheet_line"].tolist() == [3, 4]  # lines in the file: comments and the header count
    assert sheet["slide_id"].tolist() == ["007", "008"]  # text, leading zeros kept
    assert sheet.loc[0, "patient_id"] == "P1" and sheet.loc[0, "path"] == "a.svs"
    assert sheet["annotations"].isna().tolist() == [True, False]
    assert sheet["label"].isna().tolist() == [True, False]
    assert sheet.loc[0, "mpp"] == 0.25 and pd.isna(sheet.loc[1, "mpp"])


def test_read_sheet_keeps_a_hash_inside_a_path(tmp_path):
    sheet = _sheet(tmp_path, ["A01\tPA1\tsite_a\tcases/case#1.svs\tcases/case#1.geojson"])
    assert sheet.loc[0, "path"] == "cases/case#1.svs"
    assert sheet.loc[0, "annotations"] == "cases/case#1.geojson"


def _write_bytes(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "slides.tsv"
    path.write_bytes(data)
    return path


#: A sheet as a spreadsheet writes it: a comment, a header, two rows (one with a non-ASCII cell).
SPREADSHEET_LINES = [
    "# exported from the lab's sheet",
    HEADER,
    "A01\tPA1\tsite_a\ts/A01.svs\ts/A01.geojson",
    "A02\tPätient 2\tsite_a\ts/A02.svs\ts/A02.geojson",
]


def _assert_spreadsheet_rows(sheet: pd.DataFrame) -> None:
    assert list(sheet.columns) == [*HEADER.split("\t"), "sheet_line"]
    assert sheet["slide_id"].tolist() == ["A01", "A02"]
    assert sheet["patient_id"].tolist() == ["PA1", "Pätient 2"]
    assert sheet["annotations"].tolist() == ["s/A01.geojson", "s/A02.geojson"]
    assert sheet["sheet_line"].tolist() == [3, 4]


@pytest.mark.parametrize(
    ("bom", "encoding", "line_end"),
    [
        (b"", "utf-8", "\n"),  # LibreOffice, Text CSV, UTF-8
        (b"\xef\xbb\xbf", "utf-8", "\r\n"),  # Excel for Windows, UTF-8 with BOM
        (b"\xef\xbb\xbf", "utf-8", "\n"),  # Excel for Mac, UTF-8 with BOM
        (b"\xff\xfe", "utf-16-le", "\r\n"),  # Excel's "Unicode Text (*.txt)"
        (b"\xfe\xff", "utf-16-be", "\r\n"),
        (b"", "utf-8", "\r"),  # old Mac Excel: CR line ends
    ],
)
def test_read_sheet_reads_the_encodings_spreadsheets_write(tmp_path, bom, encoding, line_end):
    data = bom + line_end.join(SPREADSHEET_LINES).encode(encoding) + line_end.encode(encoding)
    _assert_spreadsheet_rows(read_sheet(_write_bytes(tmp_path, data)))


def test_a_bom_before_the_header_does_not_hide_the_first_column(tmp_path, config):
    data = b"\xef\xbb\xbf" + ("\r\n".join([HEADER, *GOOD_ROWS]) + "\r\n").encode()
    sheet = read_sheet(_write_bytes(tmp_path, data))
    assert sheet.columns[0] == "slide_id" and sheet["sheet_line"].tolist() == [2, 3, 4]
    _sheet(tmp_path, GOOD_ROWS)  # the slide and annotation files
    check_sheet(read_sheet(_write_bytes(tmp_path, data)), config)


def test_read_sheet_unquotes_cells_as_spreadsheets_quote_them(tmp_path):
    lines = [HEADER, '"A01"\t"PA1"\t"site_a"\t"s/my ""A"" slide.svs"\t"s/A01\tcopy.geojson"']
    sheet = read_sheet(_write_bytes(tmp_path, ("\r\n".join(lines) + "\r\n").encode()))
    assert sheet.loc[0, "slide_id"] == "A01" and sheet.loc[0, "path"] == 's/my "A" slide.svs'
    assert sheet.loc[0, "annotations"] == "s/A01\tcopy.geojson"


def test_a_quote_left_open_names_the_line(tmp_path):
    lines = [HEADER, GOOD_ROWS[0], 'A02\tPA1\tsite_a\t"s/A02.svs\ts/A02.geojson', GOOD_ROWS[2]]
    with pytest.raises(StudyError) as caught:
        read_sheet(_write_bytes(tmp_path, ("\n".join(lines) + "\n").encode()))
    assert str(caught.value).startswith(
        f"{tmp_path / 'slides.tsv'}:\n  - line 3: a cell that starts with a quote"
    )


@pytest.mark.parametrize(
    ("data", "line", "encoding"),
    [
        (f"{HEADER}\nA01\tP\u00e4tient\tsite_a\ta.svs\t\n".encode("cp1252"), 2, "UTF-8"),  # Excel "Text"
        (b"# one\n# two\r\n" + HEADER.encode() + b"\r\nA01\tPA1\tsite_a\t\x81.svs\t\r\n", 4, "UTF-8"),
        (b"\xff\xfe" + f"{HEADER}\r\n".encode("utf-16-le") + b"\x00\xd8A\x00\r\x00\n\x00", 2, "UTF-16"),
    ],
)
def test_a_sheet_that_is_not_text_names_the_file_and_line(tmp_path, data, line, encoding):
    path = _write_bytes(tmp_path, data)
    with pytest.raises(StudyError) as caught:
        read_sheet(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: line {line} is not {encoding} text (byte 0x")
    assert "save the sheet as UTF-8 (tab-separated)" in message


def test_utf16_without_a_bom_is_not_read_as_garbage(tmp_path):
    path = _write_bytes(tmp_path, f"{HEADER}\r\n{GOOD_ROWS[0]}\r\n".encode("utf-16-le"))
    with pytest.raises(
        StudyError, match=r"slides.tsv: line 1 holds NUL characters .*save the sheet as UTF-8"
    ):
        read_sheet(path)


def test_an_extra_cell_names_the_sheet_line_and_cell(tmp_path):
    rows = [GOOD_ROWS[0], GOOD_ROWS[1] + "\tsee notes", GOOD_ROWS[2], "B02\tPB2\tsite_b\ts/B02.svs\t\t\t9"]
    path = _write_bytes(tmp_path, ("\r\n".join([HEADER, *rows]) + "\r\n").encode())
    with pytest.raises(StudyError) as caught:
        read_sheet(path)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{path}:" and len(lines) == 3
    assert lines[1] == (
        "  - line 3: 6 cells for the 5 columns of the header (line 1); extra cell(s) ['see notes'] beyond "
        "column 'annotations' (a tab inside a cell?)"
    )
    assert lines[2].startswith("  - line 5: 7 cells for the 5 columns") and "['9']" in lines[2]


def test_a_trailing_tab_on_every_line_does_not_shift_the_columns(tmp_path):
    lines = [f"{line}\t" for line in SPREADSHEET_LINES[1:]]
    sheet = read_sheet(_write_bytes(tmp_path, ("\r\n".join(lines) + "\r\n").encode()))
    assert list(sheet.columns) == [*HEADER.split("\t"), "sheet_line"]
    assert sheet["slide_id"].tolist() == ["A01", "A02"]
    assert sheet["annotations"].tolist() == ["s/A01.geojson", "s/A02.geojson"]
    assert sheet["sheet_line"].tolist() == [2, 3]


def test_trailing_empty_cells_are_dropped_and_short_rows_padded(tmp_path):
    lines = [HEADER + "\t\t", GOOD_ROWS[0] + "\t \t\t", "A02\tPA1\tsite_a\ts/A02.svs"]
    sheet = read_sheet(_write_bytes(tmp_path, ("\n".join(lines) + "\n").encode()))
    assert list(sheet.columns) == [*HEADER.split("\t"), "sheet_line"]
    assert sheet["annotations"].isna().tolist() == [False, True]
    assert sheet["sheet_line"].tolist() == [2, 3]


def test_a_column_named_twice_is_an_error(tmp_path):
    path = _write_bytes(tmp_path, f"{HEADER}\tpath\n{GOOD_ROWS[0]}\tx.svs\n".encode())
    with pytest.raises(StudyError, match=r"line 1: column\(s\) \['path'\] appear more than once"):
        read_sheet(path)


# ----------------------------------------------------------------------------- check_sheet


def test_a_good_sheet_passes(tmp_path, config):
    check_sheet(_sheet(tmp_path, GOOD_ROWS), config)


def test_a_missing_stain_reference_is_named_before_any_job(tmp_path, config):
    config["datasets"]["site_a"]["model"] = {"stain": {"normalization": "macenko", "reference": "ref/"}}
    config["cohorts"]["site_b_by_model_a_hed"]["variant"]["stain"] = {"reference": str(tmp_path)}  # exists
    config["cohorts"]["site_b_by_model_a_macenko"]["variant"]["stain"]["reference"] = "none.png"
    with pytest.raises(StudyError) as caught:
        check_sheet(_sheet(tmp_path, GOOD_ROWS), config)
    lines = str(caught.value).splitlines()[1:]
    assert len(lines) == 2
    assert "config 'datasets: site_a: model: stain: reference': no such file or folder ref/" in lines[0]
    assert "'cohorts: site_b_by_model_a_macenko: variant: stain: reference'" in lines[1]


def test_missing_required_column(tmp_path, config):
    sheet = _sheet(
        tmp_path, ["A01\tsite_a\ts/A01.svs\ts/A01.geojson"], "slide_id\tdataset\tpath\tannotations"
    )
    message = _problems(sheet, config)
    assert "missing column(s) ['patient_id']" in message


def test_empty_required_value_names_the_slide_and_column(tmp_path, config):
    message = _problems(_sheet(tmp_path, [*GOOD_ROWS, "A03\t\tsite_a\ts/A03.svs\ts/A03.geojson"]), config)
    assert "column 'patient_id' is empty in 'A03' (line 5)" in message


def test_duplicate_slide_id(tmp_path, config):
    message = _problems(_sheet(tmp_path, [*GOOD_ROWS, "A02\tPA2\tsite_a\ts/x.svs\ts/x.geojson"]), config)
    assert "slide_id not unique: 'A02' (line 3), 'A02' (line 5)" in message


def test_slide_ids_that_differ_only_in_case_are_refused(tmp_path, config):
    rows = [*GOOD_ROWS, "a01\tPA2\tsite_a\ts/x.svs\ts/x.geojson", "b01\tPB1\tsite_b\ts/y.svs\ts/y.geojson"]
    message = _problems(_sheet(tmp_path, rows), config)
    lines = [line for line in message.splitlines() if "differ only in case" in line]
    assert lines == [
        "  - slide_id differ only in case: 'A01' (line 2), 'a01' (line 5); they would share one folder on "
        "macOS, Windows and SMB shares (rename one)",
        "  - slide_id differ only in case: 'B01' (line 4), 'b01' (line 6); they would share one folder on "
        "macOS, Windows and SMB shares (rename one)",
    ]
    assert "not unique" not in message


def test_unknown_dataset(tmp_path, config):
    message = _problems(_sheet(tmp_path, [*GOOD_ROWS, "X01\tPX1\tsite_x\ts/X01.svs\ts/X01.geojson"]), config)
    assert "['site_x'] of 'X01' (line 5)" in message and "not in the config's 'datasets'" in message


def test_patient_with_slides_in_two_datasets(tmp_path, config):
    message = _problems(_sheet(tmp_path, [*GOOD_ROWS, "B02\tPA1\tsite_b\ts/B02.svs\ts/B02.geojson"]), config)
    assert "patient 'PA1' has slides in several datasets ['site_a', 'site_b']" in message
    assert "'A01' (line 2), 'A02' (line 3), 'B02' (line 5)" in message
    assert "PB1" not in message


def test_empty_annotations_in_an_annotation_dataset(tmp_path, config):
    message = _problems(_sheet(tmp_path, [*GOOD_ROWS, "B02\tPB2\tsite_b\ts/B02.svs\t"]), config)
    assert "dataset 'site_b' labels from annotations" in message
    assert "empty in 'B02' (line 5)" in message


def test_annotation_dataset_without_annotations_column(tmp_path, config):
    sheet = _sheet(tmp_path, ["A01\tPA1\tsite_a\ts/A01.svs"], "slide_id\tpatient_id\tdataset\tpath")
    message = _problems(sheet, config)
    assert "dataset 'site_a' labels from annotations" in message and "'A01' (line 2)" in message


def test_slide_label_dataset_with_a_label_not_in_classes(tmp_path, slide_label_config):
    rows = [
        "A01\tPA1\tsite_a\ts/A01.svs\ts/A01.geojson\t",
        "C01\tPC1\tsite_c\ts/C01.svs\t\tbenign",
        "C02\tPC2\tsite_c\ts/C02.svs\t\ttumour",
        "C03\tPC3\tsite_c\ts/C03.svs\t\t",
    ]
    message = _problems(_sheet(tmp_path, rows, HEADER + "\tlabel"), slide_label_config)
    assert "dataset 'site_c' uses slide labels" in message
    assert "in 'C02' (line 4), 'C03' (line 5)" in message
    assert "C01" not in message and "A01" not in message


def test_slide_label_dataset_with_good_labels_passes(tmp_path, slide_label_config):
    rows = ["C01\tPC1\tsite_c\ts/C01.svs\t\tbenign", "C02\tPC2\tsite_c\ts/C02.svs\t\tmalignant"]
    only_site_c = {**slide_label_config, "datasets": {"site_c": slide_label_config["datasets"]["site_c"]}}
    check_sheet(_sheet(tmp_path, rows, HEADER + "\tlabel"), only_site_c)


def test_a_slide_dataset_without_slides_is_an_error(tmp_path, slide_label_config):
    rows = ["C01\tPC1\tsite_c\ts/C01.svs\t\tbenign"]
    with pytest.raises(StudyError, match="dataset 'site_a' has no slides in the sheet"):
        check_sheet(_sheet(tmp_path, rows, HEADER + "\tlabel"), slide_label_config)


@pytest.mark.parametrize("bad_id", ["A 01", "A/01", "A:01", "A01*"])
def test_bad_slide_id_characters(tmp_path, config, bad_id):
    message = _problems(
        _sheet(tmp_path, [*GOOD_ROWS, f"{bad_id}\tPA2\tsite_a\ts/x.svs\ts/x.geojson"]), config
    )
    assert "slide_id may hold only" in message and repr(bad_id) in message


def test_good_slide_id_characters_pass(tmp_path, config):
    check_sheet(_sheet(tmp_path, [*GOOD_ROWS, "TCGA-A1_2.b\tPA2\tsite_a\ts/x.svs\ts/x.geojson"]), config)


def test_several_problems_are_reported_together(tmp_path, config):
    rows = [
        *GOOD_ROWS,
        "A01\tPA9\tsite_a\ts/y.svs\ts/y.geojson",  # duplicate id
        "X 1\tPX1\tsite_x\ts/X1.svs\ts/X1.geojson",  # bad id, unknown dataset
        "B02\tPA1\tsite_b\ts/B02.svs\t",  # patient in two datasets, no annotations
    ]
    message = _problems(_sheet(tmp_path, rows), config)
    lines = [line for line in message.splitlines() if line.startswith("  - ")]
    assert len(lines) == 5
    for expected in (
        "slide_id not unique: 'A01' (line 2), 'A01' (line 5)",
        "slide_id may hold only",
        "['site_x']",
        "patient 'PA1' has slides in several datasets",
        "empty in 'B02' (line 7)",
    ):
        assert sum(expected in line for line in lines) == 1, expected


def test_every_missing_slide_and_annotation_file_is_named_at_once(tmp_path, config):
    rows = [
        *GOOD_ROWS,
        "A03\tPA2\tsite_a\tgone/A03.svs\tgone/A03.geojson",
        "A04\tPA2\tsite_a\tgone/A04.svs\ts/A01.geojson",
    ]
    path = tmp_path / "slides.tsv"
    sheet = _sheet(tmp_path, GOOD_ROWS)  # the good rows' files exist
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    message = _problems(read_sheet(path), config)
    assert "2 slide file(s) of column 'path' do not exist: 'A03' (line 5), 'A04' (line 6)" in message
    assert "1 annotation file(s) of column 'annotations' do not exist: 'A03' (line 5)" in message
    assert "relative path starts at the study folder" in message
    assert len(sheet) == 3


def test_files_the_demo_writes_are_not_required_to_exist(tmp_path, config):
    rows = [
        "A01\tPA1\tsite_a\tdemo/A01.svs\tdemo/A01.geojson",
        "B01\tPB1\tsite_b\tdemo/B01.svs\tdemo/B01.geojson",
    ]
    check_sheet(_sheet(tmp_path, rows, files=False), {**config, "demo_dir": "demo"})
    with pytest.raises(StudyError, match="do not exist"):
        check_sheet(_sheet(tmp_path, rows, files=False), {**config, "demo_dir": None})


@pytest.mark.parametrize(("value", "hint"), [("0,25", "use a decimal point"), ("-1", ""), ("fine", "")])
def test_a_sheet_mpp_that_is_not_a_positive_number_is_an_error(tmp_path, config, value, hint):
    header = f"{HEADER}\tmpp"
    rows = [f"{row}\t" for row in GOOD_ROWS[:2]] + [f"{GOOD_ROWS[2]}\t{value}"]
    message = _problems(_sheet(tmp_path, rows, header), config)
    assert f"column 'mpp' must be a positive number (um per pixel), not ['{value}']" in message
    assert "'B01' (line 4)" in message and hint in message


def test_a_numeric_sheet_mpp_is_read_as_a_number(tmp_path, config):
    rows = [f"{row}\t0.25" for row in GOOD_ROWS]
    sheet = _sheet(tmp_path, rows, f"{HEADER}\tmpp")
    check_sheet(sheet, config)
    assert sheet["mpp"].tolist() == [0.25, 0.25, 0.25]


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n"])
def test_an_empty_sheet_names_the_sheet(tmp_path, content):
    (tmp_path / "slides.tsv").write_text(content)
    with pytest.raises(StudyError, match=r"slides.tsv: the slide sheet is empty"):
        read_sheet(tmp_path / "slides.tsv")


def test_a_missing_sheet_names_the_config_key(tmp_path):
    with pytest.raises(StudyError, match=r"nope.tsv: the slide sheet does not exist \(config 'slides'\)"):
        read_sheet(tmp_path / "nope.tsv")


def test_a_long_sheet_with_one_mistake_gives_a_short_message(tmp_path, config):
    rows = [f"X{k:05d}\tPX{k}\tsite_x\ts/A01.svs\ts/A01.geojson" for k in range(10_000)]
    message = _problems(_sheet(tmp_path, GOOD_ROWS[:1] + rows, files=True), config)
    assert len(message.splitlines()) < 25 and len(message) < 3000
    assert "and 9990 more" in message


# ----------------------------------------------------------------------------- the config


def test_model_settings_merge_dataset_overrides_over_defaults(config):
    config["datasets"]["site_b"]["model"] = {
        "backbone": "resnet50",
        "epochs": 2,
        "augment": {"color_jitter": 0.3},
    }
    merged = model_settings(config, "site_b")
    assert merged.backbone == "resnet50" and merged.epochs == 2
    assert merged.augment.color_jitter == 0.3 and merged.augment.flips == config["model"]["augment"]["flips"]
    for key in set(config["model"]) - {"backbone", "epochs", "augment", "stain"}:
        assert getattr(merged, key) == config["model"][key]
    # a cohort's variant changes single keys on top of the dataset's, nested ones key by key
    variant = model_settings(config, "site_b", variant={"stain": {"normalization": "macenko"}, "epochs": 3})
    assert variant.stain.normalization == "macenko" and variant.stain.reference is None
    assert variant.epochs == 3 and variant.backbone == "resnet50" and variant.augment.color_jitter == 0.3
    assert stain_label(variant) == "macenko" and stain_label(merged) == "none"
    hed = model_settings(config, "site_b", variant={"augment": {"hed_scale": 0.2}})
    assert stain_label(hed) == "hed" and hed.augment.color_jitter == 0.3
    # the defaults and the other dataset are untouched
    assert config["model"]["backbone"] == "small_cnn" and config["model"]["augment"]["color_jitter"] == 0.05
    assert config["model"]["stain"]["normalization"] == "none"
    assert model_settings(config, "site_a").to_dict() == config["model"]


def test_validation_fills_in_every_default_from_the_schema():
    config = {
        "datasets": {"d": {"labels": {"source": "patches", "classes": ["a", "b"]}, "positive_class": "a"}}
    }
    validate_config(config, SCHEMA)
    tiling = {"tile_size": 128, "compressor": "zstd", "jpeg_quality": 90, "jpeg_dct_scaling": True}
    assert config["tiling"] == tiling
    assert config["model"]["augment"] == {
        "flips": True,
        "rotations": True,
        "color_jitter": 0.05,
        "hed_scale": 0.0,
        "hed_shift": 0.0,
    }
    assert config["model"]["stain"] == {"normalization": "none", "reference": None}
    assert config["datasets"]["d"]["env"] == "tensorflow-cpu"
    assert config["datasets"]["d"]["labels"]["unannotated"] is None


def test_schema_errors_are_one_line_each_with_the_key_path(config):
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw["tiling"] = {"compressor": "gzip9", "tile_size": 8}
    raw["model"] = {"unfreeze": "some"}
    raw["datasets"]["site_a"]["labels"]["source"] = "folders"
    with pytest.raises(StudyError) as caught:
        validate_config(raw, SCHEMA)
    lines = str(caught.value).splitlines()
    assert lines[0] == "config:" and len(lines) == 5
    assert any("config key 'tiling: compressor': 'gzip9' is not one of" in line for line in lines)
    assert any("'tiling: tile_size': 8 is less than the minimum of 16" in line for line in lines)
    assert any("'datasets: site_a: labels: source'" in line for line in lines)
    assert any("'model: unfreeze': 'some' is not allowed here" in line for line in lines)
    assert all(len(line) < 400 for line in lines)


def _config_problems(raw):
    with pytest.raises(StudyError) as caught:
        validate_config(raw, SCHEMA)
    return str(caught.value)


def test_cross_field_config_errors_name_the_key(config):
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw["splits"] = {"fractions": {"train": 0.8, "val": 0.5, "test": 0.2}}
    raw["datasets"]["site_a"]["positive_class"] = "tumour"
    raw["datasets"]["site_a"]["labels"]["annotation_classes"] = {"Tumor": "Tumour"}
    raw["datasets"]["site_b"]["labels"]["unannotated"] = "stroma"
    lines = _config_problems(raw).splitlines()
    assert lines[0] == "config:" and len(lines) == 5
    assert any("'splits: fractions': train + val + test must be 1, not 1.5" in line for line in lines)
    assert any(
        "'datasets: site_a: positive_class': 'tumour' is not one of the dataset's classes" in line
        for line in lines
    )
    assert any(
        "'datasets: site_a: labels: annotation_classes: Tumor': 'Tumour' is not one of" in line
        for line in lines
    )
    assert any(
        "'datasets: site_b: labels: unannotated': 'stroma' is not one of the classes" in line
        for line in lines
    )


def test_a_schema_error_does_not_print_the_schema(config):
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw["datasets"]["site_a"]["labels"] = {"source": "annotations"}  # no classes
    message = _config_problems(raw)
    assert len(message) < 500 and "$schema" not in message and "'classes' is a required property" in message
