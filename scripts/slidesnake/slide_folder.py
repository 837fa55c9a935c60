"""A slide folder (``results/slides/<slide>/``): what rule ``ingest`` writes about one slide, by name.

This module owns the folder's layout; rules that read a slide's facts, thumbnail or mask find the
files here, without depending on the code that reads slides.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

#: The files of a slide folder that rule ``ingest`` writes.
SLIDE_FILES = {
    "info": "info.json",
    "thumbnail": "thumbnail.png",
    "mask": "tissue_mask.png",
    "tissue_qc": "tissue_qc.json",
    "grid": "tile_grid.tsv",
    "tiling_qc": "tiling_qc.json",
}


def slide_file(slide_dir: str, name: str) -> str:
    """The file ``name`` (a key of :data:`SLIDE_FILES`) in a slide folder."""
    return str(Path(slide_dir) / SLIDE_FILES[name])


def slide_files(slide_dirs: Sequence[str], name: str) -> list[str]:
    """The file ``name`` (a key of :data:`SLIDE_FILES`) in each of the slide folders."""
    return [slide_file(folder, name) for folder in slide_dirs]
