"""Small file helpers shared by every stage: atomic writes, JSON, logging (tables: :mod:`.tables`)."""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .interrupts import interrupts_held

#: Marker of temporary outputs: ``.<name>.<pid>.tmp<suffix>`` beside the final path.
TMP = ".tmp"


def temporary_sibling(final: Path) -> Path:
    """The temporary path this process writes ``final`` under; it keeps the suffix (Keras wants it)."""
    return final.with_name(f".{final.name}.{os.getpid()}{TMP}{final.suffix}")


def stale_siblings(final: str | os.PathLike) -> list[Path]:
    """Temporary siblings of ``final`` left by earlier jobs that were killed (any process id)."""
    final = Path(final)
    tails = sorted({TMP + final.suffix, TMP, final.suffix} - {""}, key=len, reverse=True)  # and older names
    own = re.compile(rf"\.{re.escape(final.name)}\.\d+({'|'.join(map(re.escape, tails))})")
    return sorted(p for p in final.parent.glob(f".{glob.escape(final.name)}.*") if own.fullmatch(p.name))


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``final`` and rename it into place on success.

    Works for files and for directories (Zarr stores). Temporary siblings of
    ``final`` that killed earlier jobs left behind are removed first. On an
    exception (also SIGTERM and SIGINT, which :func:`slidesnake.rules.run` turns
    into one) the temporary path is removed and ``final`` is left untouched, so
    a failed job never leaves a half-written output. A termination signal during
    the rename or the removal waits for it to end
    (:func:`slidesnake.interrupts.interrupts_held`). Before the rename the new
    file (for a folder: its Zarr metadata files) is flushed to disk, so a crash
    cannot leave an empty file under the final name.

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
    for stale in stale_siblings(final):
        logging.getLogger(__name__).warning("removing %s, left by a job that was killed", stale)
        _remove(stale)
    tmp = temporary_sibling(final)
    try:
        yield tmp
        with interrupts_held():  # a signal now waits for the rename: the output is whole or absent
            _flush(tmp)
            _remove(final)
            os.replace(tmp, final)
            _fsync(final.parent)
    finally:
        with interrupts_held():  # and the removal of a temporary folder is never cut half-way
            _remove(tmp)


def _flush(path: Path) -> None:
    """fsync a file, or a folder's Zarr metadata files and the folder itself."""
    for item in [path] if path.is_file() else [*path.rglob("zarr.json"), path]:
        _fsync(item)


def _fsync(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


#: How long :func:`_remove` waits for a folder that another thread still writes into to stay gone.
REMOVE_PATIENCE_S = 5.0


def _remove(path: Path) -> None:
    """Remove a file or folder; a folder that a still-running writer refills is removed again."""
    if not path.is_dir() or path.is_symlink():
        if path.exists() or path.is_symlink():
            path.unlink()
        return
    deadline = time.monotonic() + REMOVE_PATIENCE_S
    while True:
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:  # gone meanwhile, or a file in it removed by its writer
            if not path.exists():
                return
        except OSError as err:  # "Directory not empty": a writer added a file while rmtree ran
            if err.errno != errno.ENOTEMPTY or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def write_all(handle: int, data: bytes) -> None:
    """Write every byte of ``data`` to a file descriptor, or raise: short writes (a full disk) are retried."""
    view = memoryview(data)
    while view:
        written = os.write(handle, view)
        if written <= 0:
            msg = f"wrote {written} of {len(view)} bytes"
            raise OSError(msg)
        view = view[written:]


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
