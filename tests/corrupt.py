"""Damaged copies of real slide files, as scanners and interrupted copies leave them."""

from __future__ import annotations

import shutil
from pathlib import Path

import tifffile


def corrupt_tiles(source: Path, target: Path, *, level: int, first: float, last: float = 1.0) -> int:
    """Copy a tiled TIFF/SVS and overwrite the start of some of one level's tiles with zeros.

    The tiles from ``first`` to ``last`` (fractions of the level's tiles, in file order: row by row)
    lose their JPEG start marker, so a decoder says "Not a JPEG file"; the others stay readable.

    Returns
    -------
    int
        How many tiles were damaged.
    """
    shutil.copyfile(source, target)
    with tifffile.TiffFile(target) as tif:
        page = tif.series[0].levels[level].keyframe
        offsets, counts = page.dataoffsets, page.databytecounts
    start, stop = int(len(offsets) * first), int(len(offsets) * last)
    with open(target, "r+b") as handle:
        for offset, count in zip(offsets[start:stop], counts[start:stop], strict=True):
            if count:
                handle.seek(offset)
                handle.write(bytes(min(16, count)))
    return stop - start


def truncate(source: Path, target: Path, *, keep: float) -> None:
    """Copy the first ``keep`` fraction of a file's bytes, as an interrupted copy leaves it."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
