"""Seeded, deterministic demo study of synthetic H&E whole-slide images.

Each demo slide is a real-format pyramidal Aperio SVS (JPEG tiles, thumbnail, Aperio
ImageDescription) that OpenSlide opens, showing procedural H&E-like tissue on a white
background. Tumor regions are irregular polygons inside the tissue, painted with a texture
that differs from normal tissue, and written as a QuPath-style GeoJSON next to each slide:

- normal: pink eosin stroma with fibres and sparse, small, elongated, pale-purple nuclei;
- tumor: crowded, larger, darker, irregular hematoxylin-purple nuclei on a slightly more
  purple background.

Two "sites" mimic two scanners: ``site_a`` scans at 40x (0.25 um/px) with a pinker stain,
``site_b`` at 20x (0.5 um/px) with a bluer, more purple stain. The study has 12 slides from
8 patients (6 slides and 4 patients per site, two patients per site with two slides).

Everything is seeded from the slide id, so the same id gives byte-identical files on every
run. Command line: ``slidesnake-demo OUT_DIR [--small]``.

Modules: :mod:`.sheet` (sites, sheet), :mod:`.layout` (tissue and tumor geometry),
:mod:`.texture` (the stained image), :mod:`.slide` (writing slides and the study) and
:mod:`.svs`, the one slide writer the tests reuse.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .sheet import DEMO_DATASETS, demo_sheet
from .slide import write_demo_slide, write_demo_study

__all__ = ["DEMO_DATASETS", "demo_sheet", "main", "write_demo_slide", "write_demo_study"]


def main(argv: list[str] | None = None) -> None:
    """Command line: ``slidesnake-demo OUT_DIR [--small]``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).
    """
    ap = argparse.ArgumentParser(prog="slidesnake-demo", description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", help="folder to write the demo slides, annotations and slides.tsv into")
    ap.add_argument("--small", action="store_true", help="small 600 x 400 um slides (fast)")
    args = ap.parse_args(argv)
    sheet = write_demo_study(args.out_dir, small=args.small)
    print(
        f"wrote {len(sheet)} demo slides ({sheet['patient_id'].nunique()} patients) to {args.out_dir}; "
        f"sheet: {Path(args.out_dir) / 'slides.tsv'}"
    )
