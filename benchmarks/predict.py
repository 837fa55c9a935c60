"""Prediction benchmark: the ``predict`` stage on the bench slide's store against the model's forward pass.

On the tile store of the tiling benchmark's slide (built once into ``.bench/``, tiled with the
default config), with the default model (``small_cnn``, random weights: speed does not depend
on the weights) saved as the workflow saves it, it times on the same cores:

(a) the forward pass alone: the same model on the same tiles, already in memory, in batches of the
    stage's batch size, through the same compiled function;
(b) the workflow's ``predict`` rule function: read the tiles from Zarr, run the model, stitch the
    map, write the map store, heatmaps, QuPath GeoJSON and OME-TIFF overlay; in a child process
    that reports its peak RSS.

Each runs twice, interleaved (a, b, a, b), and each figure is the faster of its two runs, so the
machine's drift (the same figure has varied 2x between runs here) hits both alike.

The last line has a fixed form that other tools parse::

    bench predict: predict_vs_forward=<tiles/s of (b) / tiles/s of (a)> tiles_per_s=<(b)> rss_gb=<(b)>

``--quick`` does the same on the 2,000 x 1,500 px slide of ``tiling.py --quick``, each run once:
the check that the benchmark still runs (``tests/test_bench.py``), not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import time
from pathlib import Path

from common import ROOT, default_config, run_child
from tiling import QUICK_SIZE, SLIDE_SIZE, child_tiling, ensure_slide

CLASSES = ["normal", "tumor"]


def prepare(slide: Path, work: Path, threads: int) -> None:
    """Tile the slide (the tiling benchmark's (b)) and save an untrained default model for its tiles."""
    child_tiling(slide, work, threads)
    prepare_model(work)


def prepare_model(work: Path) -> None:
    """Save the default model, untrained, as training saves it: ``model.keras`` and ``model.json``."""
    from slidesnake.io import write_json
    from slidesnake.model.build import build_model
    from slidesnake.settings import model_settings

    config = default_config()
    settings = model_settings(config, sorted(config["datasets"])[0])
    tile = config["tiling"]["tile_size"]
    build_model(settings, tile_size=tile, classes=CLASSES).save(work / "model.keras")
    geometry = {"tile_size": tile, "mpp": config["resolution"]["target_mpp"]}
    model_json = {"dataset": "bench", "classes": CLASSES, "geometry": geometry}
    write_json({**model_json, "slide_splits": {"bench": "test"}}, work / "model.json")


def child_forward(work: Path, threads: int) -> dict:
    """Time (a): the forward pass over the store's tiles held in memory."""
    import keras
    import tensorflow as tf

    from slidesnake.model.classifier import PREDICT_BATCH
    from slidesnake.model.fit import predict_probabilities, set_threads
    from slidesnake.store import TileStore

    set_threads(threads)
    store = TileStore(work / "bench.zarr")
    tiles = store.read_tiles(store.index)
    model = keras.models.load_model(work / "model.keras")
    data = tf.data.Dataset.from_tensor_slices(tiles).batch(PREDICT_BATCH).cache()
    predict_probabilities(model, data.take(2))  # compile first, as (b) does on its first batch
    start = time.perf_counter()
    predict_probabilities(model, data)
    return {"seconds": time.perf_counter() - start, "tiles": len(tiles)}


def child_predict(work: Path, threads: int) -> dict:
    """Time (b): the workflow's predict stage, with the default prediction settings.

    The arguments are those ``scripts/predict.py`` passes for a slide whose home has no labels (so
    no annotations and no slide label: the agreement with labels is not part of the figure).
    """
    import keras  # noqa: F401  (imported before the clock starts, as in (a): a job pays it once)

    from slidesnake.rules.predict import predict

    config = default_config()
    out = work / "out"
    out.mkdir()
    start = time.perf_counter()
    predict(
        model_path=str(work / "model.keras"),
        model_json=str(work / "model.json"),
        store=str(work / "bench.zarr"),
        info_json=str(work / "info.json"),
        thumbnail_png=str(work / "thumbnail.png"),
        annotation_files=[],
        labels=None,
        slide_label=None,
        model="bench",
        classes=CLASSES,
        positive_class="tumor",
        prediction=config["prediction"],
        tolerance=config["resolution"]["tolerance"],
        tiles_tsv=str(out / "tiles.tsv"),
        scores_json=str(out / "scores.json"),
        map_store=str(out / "map.zarr"),
        heatmap_jpg=str(out / "heatmap.jpg"),
        classmap_jpg=str(out / "classmap.jpg"),
        qupath_geojson=str(out / "bench.geojson"),
        overlay_tif=str(out / "overlay.ome.tif"),
        threads=threads,
    )
    seconds = time.perf_counter() - start
    tiles = json.loads((out / "scores.json").read_text())["tiles"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    return {"seconds": seconds, "tiles": tiles, "peak_rss_gb": peak}


def main(argv: list[str] | None = None) -> None:
    """Command line: tile the bench slide, time (a) and (b), print the figures."""
    parser = argparse.ArgumentParser(prog="benchmarks/predict.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".bench", help="cache and work folder")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--quick", action="store_true", help="a 2000x1500 px slide, one run each: checks that the bench runs"
    )
    parser.add_argument("--child", choices=["prepare", "forward", "predict"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--slide", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "prepare":
        prepare(args.slide, args.work, args.threads)
        return
    if args.child:
        run = child_forward if args.child == "forward" else child_predict
        print(json.dumps(run(args.work, args.threads)))
        return
    slide = ensure_slide(args.out, QUICK_SIZE if args.quick else SLIDE_SIZE)
    work = args.out / "predict"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    run_child(__file__, "prepare", work, args.threads, slide)
    one, five, _ = os.getloadavg()
    load = f"load average {one:.2f} (1 min) {five:.2f} (5 min)"
    print(f"bench predict on {slide.name}, {args.threads} threads, {load}")
    runs = {"forward": [], "predict": []}
    rounds = 1 if args.quick else 2  # interleaved, each figure the faster of its runs: drift hits both alike
    for _ in range(rounds):
        for mode, found in runs.items():
            if mode == "predict":
                shutil.rmtree(work / "out", ignore_errors=True)
            found.append(run_child(__file__, mode, work, args.threads))
    forward, b = (min(found, key=lambda r: r["seconds"]) for found in runs.values())
    rss = max(r["peak_rss_gb"] for r in runs["predict"])
    a_rate = forward["tiles"] / forward["seconds"]
    seconds = forward["seconds"]
    print(f"(a) forward pass on {forward['tiles']} tiles in memory: {seconds:.2f} s ({a_rate:.0f} tiles/s)")
    b_rate = b["tiles"] / b["seconds"]
    print(
        f"(b) predict stage (Zarr -> model -> map, heatmaps, GeoJSON, OME-TIFF): {b['seconds']:.2f} s "
        f"({b_rate:.0f} tiles/s), peak RSS {rss:.2f} GB (targets: (b)/(a) >= 0.8, < 2 GB)"
    )
    print(
        f"bench predict: predict_vs_forward={b_rate / a_rate:.2f} tiles_per_s={b_rate:.0f} rss_gb={rss:.2f}",
        flush=True,
    )
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
