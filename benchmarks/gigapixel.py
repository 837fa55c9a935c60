"""Gigapixel check: every per-slide stage on a 100,000 x 80,000 px slide, each in its own process.

It builds (once, cached in ``--out``) a 100,000 x 80,000 px Aperio SVS at 0.25 um/px from real
H&E tissue with ``../shared/tools/make_bench_slide.py`` (about 25 minutes and 24 GB of scratch
space), then runs the workflow's rule code one after another, as the jobs of a study would, with
the default config: the three stages of rule ``ingest`` (``slide_info``, ``tissue``, ``tile``, each
timed alone) and rule ``predict`` (tile table, map
store, heatmap, class map, QuPath GeoJSON, OME-TIFF overlay) with the default model saved
untrained (speed and memory do not depend on its weights). Each stage runs in a child process
that reports its wall time and peak RSS; the target is under 2 GB for every stage. One line per
stage, then::

    bench gigapixel: slide=<w>x<h> tiles=<n> max_rss_gb=<g> <stage>_s=<s> ...

``--quick`` runs the same stages on a 2,000 x 1,500 px slide (built in a second, cached in
``--out``; the size of ``tiling.py --quick``'s): the check that the benchmark still runs
(``tests/test_bench.py``), not a measurement (a stage's time can print as 0.0).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, default_config
from predict import child_predict, prepare_model
from tiling import MAKE_SLIDE, QUICK_SIZE, SLIDE_MPP

SIZE = (100_000, 80_000)  # width, height in level-0 pixels
STAGES = ("slide_info", "tissue", "tile", "predict")


def ensure_slide(folder: Path, size: tuple[int, int] = SIZE) -> Path:
    """Return the cached gigapixel slide in ``folder`` (``size``: another), building it first if missing."""
    width, height = size
    slide = folder / f"giga-{width}x{height}.svs"
    if not slide.exists():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"building {slide} ({'about 25 minutes, ' if size == SIZE else ''}once) ...", flush=True)
        command = [
            sys.executable,
            str(MAKE_SLIDE),
            str(slide),
            "--width",
            str(width),
            "--height",
            str(height),
        ]
        subprocess.run([*command, "--mpp", str(SLIDE_MPP)], check=True)
    return slide


def run_stage(stage: str, slide: Path, work: Path, threads: int) -> dict:
    """Run one stage's rule function on the slide (outputs in ``work``); return its time and peak RSS."""
    from slidesnake.rules.ingest import slide_info, tile, tissue

    config = default_config()
    info_json, mask_png, tissue_json = (str(work / name) for name in ("info.json", "mask.png", "tissue.json"))
    start = time.perf_counter()
    if stage == "slide_info":
        slide_info(
            slide_path=str(slide),
            slide_id="bench",
            sheet_mpp=None,
            mpp_override=None,
            on_bad_slide="fail",
            info_json=info_json,
        )
    elif stage == "tissue":
        thumbnail = str(work / "thumbnail.png")
        tissue(
            info_json=info_json,
            tissue=config["tissue"],
            thumbnail_png=thumbnail,
            mask_png=mask_png,
            qc_json=tissue_json,
        )
    elif stage == "tile":
        tile(
            info_json=info_json,
            mask_png=mask_png,
            tissue_qc_json=tissue_json,
            resolution=config["resolution"],
            tiling=config["tiling"],
            min_tissue_fraction=config["tissue"]["min_tissue_fraction"],
            on_bad_slide="fail",
            store=str(work / "bench.zarr"),
            grid_tsv=str(work / "tile_grid.tsv"),
            qc_json=str(work / "tiling_qc.json"),
            threads=threads,
        )
    elif stage == "model":  # not a stage of the slide: the model that predict loads
        prepare_model(work)
    else:
        child_predict(work, threads)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    return {"seconds": seconds, "peak_rss_gb": peak}


def main(argv: list[str] | None = None) -> None:
    """Command line: build the slide, run the stages, print their times and peak RSS."""
    parser = argparse.ArgumentParser(prog="benchmarks/gigapixel.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".bench", help="cache and work folder")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--slide", type=Path, help="use this slide instead of building one")
    parser.add_argument(
        "--quick", action="store_true", help="a 2000x1500 px slide: checks that the bench runs, no figures"
    )
    parser.add_argument("--child", choices=[*STAGES, "model"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_stage(args.child, args.slide, args.work, args.threads)))
        return
    slide = args.slide or ensure_slide(args.out, QUICK_SIZE if args.quick else SIZE)
    work = args.out / "gigapixel"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    one, five, _ = os.getloadavg()
    print(
        f"bench gigapixel on {slide.name}, {args.threads} threads, "
        f"load average {one:.2f} (1 min) {five:.2f} (5 min)"
    )
    figures = {}
    for stage in ("model", *STAGES):
        command = [sys.executable, str(Path(__file__).resolve()), "--child", stage, "--slide", str(slide)]
        command += ["--work", str(work), "--threads", str(args.threads)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"stage {stage} failed:\n{done.stderr[-4000:]}")
        figures[stage] = json.loads(done.stdout.strip().splitlines()[-1])
        if stage == "model":
            continue
        print(
            f"{stage}: {figures[stage]['seconds']:.1f} s, peak RSS {figures[stage]['peak_rss_gb']:.2f} GB",
            flush=True,
        )
    tiles = json.loads((work / "tiling_qc.json").read_text())["tiles_written"]
    info = json.loads((work / "info.json").read_text())
    width, height = info["width"], info["height"]
    peak = max(figures[stage]["peak_rss_gb"] for stage in STAGES)
    times = " ".join(f"{stage}_s={figures[stage]['seconds']:.1f}" for stage in STAGES)
    print(f"bench gigapixel: slide={width}x{height} tiles={tiles} max_rss_gb={peak:.2f} {times}", flush=True)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
