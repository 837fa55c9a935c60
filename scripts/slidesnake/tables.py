"""Stored tables: each kind declared once, by the module that owns it, with its columns and their kinds.

A :class:`StoredTable` is what a tab-separated table under ``results/`` holds: its columns, the
kind of each (``text``: the cells exactly as written, an empty cell ``""``; ``number``: int or float, an
empty cell NaN; ``bool``), the columns that may be absent, and the kind of any further columns (the one
column per class of a prediction table). Its owner module (the one that builds the table) declares it;
every rule reads and writes the table through it, so ids (:data:`ID_COLUMNS`) are text in every reader
(``007`` stays ``007``), and a table of the wrong shape (left by an older version) is an error naming the
file and the column, not a wrong number further on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from .errors import TableError
from .io import atomic_path

Kind = Literal["text", "number", "bool"]

#: Columns that hold ids (slides, patients, items, bags) or class names: text in every stored table.
ID_COLUMNS = ("slide_id", "patient_id", "item", "bag", "label")


@dataclass(frozen=True, kw_only=True)
class StoredTable:
    """One kind of stored table.

    Parameters
    ----------
    paths : tuple of str
        Where the workflow keeps it (``results/splits/{dataset}.tsv``, Snakemake's wildcards), for messages
        and the tests that check every table a run writes.
    columns : Mapping[str, Kind]
        Its columns, with their kinds (the writer orders them).
    optional : frozenset of str
        Those of `columns` a table may lack (e.g. ``site`` where a dataset has no sites).
    more : Kind or None
        The kind of the further columns a table may have (one per class), None: none.
    more_prefix : str
        What the names of those further columns start with (``p_``: a class probability).
    """

    paths: tuple[str, ...]
    columns: Mapping[str, Kind]
    optional: frozenset[str] = field(default_factory=frozenset)
    more: Kind | None = None
    more_prefix: str = ""

    def __post_init__(self) -> None:
        wrong = [c for c in ID_COLUMNS if self.columns.get(c, "text") != "text"]
        if wrong or not self.optional <= set(self.columns):
            raise ValueError(f"{self.paths[0]}: ids {wrong} must be text; optional {sorted(self.optional)}")

    def kinds(self, header: Iterable[str], where: str | os.PathLike) -> dict[str, Kind]:
        """The kind of each column of `header`, or a :class:`TableError` naming `where` and the column."""
        header = list(header)
        missing = [c for c in self.columns if c not in header and c not in self.optional]
        further = [c for c in header if c not in self.columns]
        problem = ""
        if missing:
            problem = f"lacks column(s) {missing}"
        elif len(set(header)) < len(header):
            problem = f"repeats a column name: {header}"
        elif further and (self.more is None or not all(c.startswith(self.more_prefix) for c in further)):
            problem = f"has column(s) {further} that it does not hold"
        if problem:
            self._refuse(where, problem)
        return {c: self.columns.get(c, self.more) for c in header}

    def read(self, path: str | os.PathLike) -> pd.DataFrame:
        """The table at `path`: text columns as written, numbers parsed (an empty cell NaN), bools."""
        kinds = self.kinds(pd.read_csv(path, sep="\t", nrows=0).columns, path)
        text = [c for c, kind in kinds.items() if kind == "text"]
        table = pd.read_csv(
            path,
            sep="\t",
            dtype=dict.fromkeys(text, str),
            keep_default_na=False,
            na_values={c: [""] for c in kinds if c not in text},
        )
        if table.empty:  # no cell to infer from
            return table.astype(
                {c: {"number": "float64", "bool": "bool"}.get(k, str) for c, k in kinds.items()}
            )
        wrong = [column for column, kind in kinds.items() if not _holds(table[column], kind)]
        if wrong:
            self._refuse(path, f"column(s) {wrong} do not hold {[kinds[c] for c in wrong]} values")
        return table

    def write(self, table: pd.DataFrame, path: str | os.PathLike) -> None:
        """Write `table` (its columns checked against the declaration) tab-separated, atomically."""
        self.kinds(table.columns, path)
        with atomic_path(path) as tmp:
            table.to_csv(tmp, sep="\t", index=False)

    def _refuse(self, where: str | os.PathLike, problem: str) -> None:
        raise TableError(f"{where}: {problem} (a table {self.paths[0]}; rerun the rule that writes it)")

    def empty(self) -> pd.DataFrame:
        """A table of no rows with the required columns."""
        return pd.DataFrame(columns=[c for c in self.columns if c not in self.optional])


def _holds(values: pd.Series, kind: Kind) -> bool:
    """Whether parsed `values` are of `kind` (empty cells, NaN, allowed in number and bool columns)."""
    if kind == "number":
        return is_numeric_dtype(values) and not is_bool_dtype(values)
    if kind == "bool":  # a bool column with empty cells is parsed as objects: True, False and NaN
        return is_bool_dtype(values) or all(isinstance(v, bool) for v in values.dropna())
    return True
