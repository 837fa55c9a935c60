"""Small file helpers shared by every stage: atomic writes, JSON and TSV, logging."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``final`` and rename it into place on success.

    Works for files and for directories (Zarr stores). On error the temporary
    path is removed and ``final`` is left untouched, so a failed job never
    leaves a half-written output.

    Parameters
    ----------
    final : str or PathLike
        The path the output must have once it is complete.

    Yields
    ------
    Path
        The temporary path to write to.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    _remove(tmp)
    try:
        yield tmp
        _remove(final)
        os.replace(tmp, final)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_json(data: Any, path: str | os.PathLike) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a table as tab-separated text without the index, atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False)


def read_table(path: str | os.PathLike, **kwargs: Any) -> pd.DataFrame:
    """Read a tab-separated table written by :func:`write_table`."""
    return pd.read_csv(path, sep="\t", **kwargs)


def setup_logging(log_path: str | os.PathLike | None = None) -> logging.Logger:
    """Send the ``slidesnake`` logger (and warnings) to ``log_path`` and stderr.

    Parameters
    ----------
    log_path : str or PathLike, optional
        The rule's log file; None logs to stderr only.

    Returns
    -------
    logging.Logger
        The package logger.
    """
    logger = logging.getLogger("slidesnake")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for handler in handlers:
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    logging.captureWarnings(True)
    return logger
