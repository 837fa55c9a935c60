"""Stored tables read and written through their owners' declarations: ids as text, kinds checked, a table of
the wrong shape an error naming the file and the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from slidesnake.errors import TableError
from slidesnake.tables import StoredTable

SCORES = StoredTable(
    paths=("results/scores/{dataset}.tsv",),
    columns={"item": "text", "patient_id": "text", "note": "text", "n": "number", "kept": "bool"},
    optional=frozenset({"note"}),
    more="number",
    more_prefix="p_",
)


def write_text(path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_ids_stay_the_text_written_and_numbers_and_bools_are_parsed(tmp_path):
    write_text(
        tmp_path / "t.tsv",
        [
            "item\tpatient_id\tnote\tn\tkept\tp_tumor",
            "007\t1e3\tNA\t3\tTrue\t0.25",
            "7\tnull\t\t\tFalse\t",
            "1.0\t\tnan\t4\t\t1",
        ],
    )
    table = SCORES.read(tmp_path / "t.tsv")
    assert table["item"].tolist() == ["007", "7", "1.0"]
    assert table["patient_id"].tolist() == ["1e3", "null", ""]
    assert table["note"].tolist() == ["NA", "", "nan"]
    assert table["n"].iloc[0] == 3 and np.isnan(table["n"].iloc[1])
    assert table["kept"].iloc[0] is True and table["kept"].iloc[1] is False and pd.isna(table["kept"].iloc[2])
    assert table["p_tumor"].iloc[2] == 1.0 and np.isnan(table["p_tumor"].iloc[1])


def test_a_written_table_reads_back_the_same(tmp_path):
    table = pd.DataFrame(
        {"item": ["007", "NA"], "patient_id": ["001", "1"], "n": [1, 2], "kept": [True, False]}
        | {"p_normal": [0.5, 0.25]}
    )
    SCORES.write(table, tmp_path / "t.tsv")
    back = SCORES.read(tmp_path / "t.tsv")
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert back["item"].tolist() == ["007", "NA"] and back["n"].dtype == np.int64


def test_a_table_without_rows_has_the_declared_kinds(tmp_path):
    SCORES.write(SCORES.empty(), tmp_path / "t.tsv")
    assert (tmp_path / "t.tsv").read_text() == "item\tpatient_id\tn\tkept\n"
    empty = SCORES.read(tmp_path / "t.tsv")
    assert empty.empty and empty["n"].dtype == np.float64 and empty["kept"].dtype == bool


@pytest.mark.parametrize(
    ("lines", "complaint"),
    [
        (["item\tn\tkept", "A\t1\tTrue"], "lacks column(s) ['patient_id']"),
        (["item\tpatient_id\tn\tkept\tsite", "A\tP\t1\tTrue\tx"], "has column(s) ['site'] that it does not"),
        (["item\tpatient_id\tn\tkept", "A\tP\tmany\tTrue"], "column(s) ['n'] do not hold ['number']"),
        (["item\tpatient_id\tn\tkept", "A\tP\t1\tyes"], "column(s) ['kept'] do not hold ['bool']"),
        (["item\tpatient_id\tn\tkept", "A\tP\tTrue\tTrue"], "column(s) ['n'] do not hold ['number']"),
    ],
)
def test_a_table_of_another_shape_is_refused_naming_file_and_column(tmp_path, lines, complaint):
    write_text(tmp_path / "old.tsv", lines)
    with pytest.raises(TableError) as refused:
        SCORES.read(tmp_path / "old.tsv")
    assert str(refused.value).startswith(f"{tmp_path / 'old.tsv'}: ") and complaint in str(refused.value)
    assert "results/scores/{dataset}.tsv" in str(refused.value)


def test_a_writer_cannot_store_a_table_its_readers_would_refuse(tmp_path):
    with pytest.raises(TableError, match=r"lacks column\(s\) \['kept'\]"):
        SCORES.write(pd.DataFrame({"item": ["A"], "patient_id": ["P"], "n": [1]}), tmp_path / "t.tsv")
    with pytest.raises(TableError, match="repeats a column name"):
        SCORES.write(
            pd.DataFrame([["A", "P", 1, True, 1]], columns=[*SCORES.empty(), "n"]), tmp_path / "t.tsv"
        )
    assert not (tmp_path / "t.tsv").exists()


def test_an_id_column_must_be_declared_text():
    with pytest.raises(ValueError, match="must be text"):
        StoredTable(paths=("x.tsv",), columns={"slide_id": "number"})
