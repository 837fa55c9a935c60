"""Benchmark: training throughput through the real Zarr input pipeline against in-memory tensors.

Run as ``python benchmarks/training.py [--work .bench]`` (``make bench`` does). It tiles a
generated demo slide at 224 px into a Zarr store, then trains the same model (MobileNetV2,
alpha 0.35, 224 px, random weights) on the same tiles, alternately (a) from in-memory tensors and
(b) through :func:`slidesnake.model.data.pipeline` with the workflow's shuffling and augmentation,
and prints the ratio of the images per second. Its last line is read by other tools::

    bench training: pipeline_vs_memory=<(b)/(a)> pipeline_img_s=<(b)>

``--quick`` does the same with 64 images per epoch (two batches), one round of one timed epoch
each: the check that the benchmark still runs (``tests/test_bench.py``), not a measurement.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import default_config

TILE = 224
IMAGES_PER_EPOCH = 256
QUICK_IMAGES_PER_EPOCH = 64  # --quick: two batches
BATCH = 32
MODEL = {"backbone": "mobilenet_v2", "alpha": 0.35, "input_size": TILE, "weights": None}
AUGMENT = {"flips": True, "rotations": True, "color_jitter": 0.05, "hed_scale": 0.0, "hed_shift": 0.0}


def bench_store(work: Path) -> Path:
    """Return a Zarr tile store of one generated demo slide (20x), made once and cached in ``work``."""
    from slidesnake.demo import write_demo_slide
    from slidesnake.settings import ResolutionPolicy, TissueSettings
    from slidesnake.store import TileStore
    from slidesnake.store.codecs import make_codec
    from slidesnake.store.writer import write_tile_store
    from slidesnake.tissue import tile_grid, tissue_mask
    from slidesnake.wsi import plan_tiling
    from slidesnake.wsi.probe import read_slide_info
    from slidesnake.wsi.reader import SlideReader

    store = work / "bench-B01-224.zarr"
    if store.exists():
        try:
            TileStore(store).index  # noqa: B018 - opening it checks the layout
            return store
        except KeyError:  # made by an older slidesnake: make it again
            shutil.rmtree(store)
    work.mkdir(parents=True, exist_ok=True)
    config = default_config()
    slide = work / "bench-B01.svs"
    write_demo_slide(slide, work / "bench-B01.geojson", "B01", "site_b")
    info = read_slide_info(slide, "B01")
    plan = plan_tiling(info, ResolutionPolicy.from_config(config["resolution"]), TILE)
    settings = TissueSettings.from_config(config["tissue"])
    overview = SlideReader(info).read_overview(settings.mask_mpp)
    grid = tile_grid(plan, tissue_mask(overview, settings), settings.mask_mpp)
    kept = grid[grid["tissue_fraction"] >= settings.min_tissue_fraction]
    codec = make_codec("zstd", jpeg_quality=90)
    dct = config["tiling"]["jpeg_dct_scaling"]
    write_tile_store(
        info=info, plan=plan, tiles=kept, path=store, codec=codec, threads=2, jpeg_dct_scaling=dct
    )
    return store


def _epoch_rates(model, data, epochs: int, images: int = IMAGES_PER_EPOCH) -> list[float]:
    """Images per second of each epoch of one ``fit`` call, after a first epoch that warms up."""
    import keras

    starts: list[float] = []
    rates: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: starts.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: rates.append(images / (time.perf_counter() - starts[-1])),
    )
    model.fit(data, epochs=epochs + 1, verbose=0, shuffle=False, callbacks=[timer])
    return rates[1:]


def main(argv: list[str] | None = None) -> None:
    """Measure and print the training-pipeline figure."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path(".bench"), help="cache folder (git-ignored)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of both measurements")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per round")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_IMAGES_PER_EPOCH} images per epoch, one round of one epoch: checks that the bench runs",
    )
    args = parser.parse_args(argv)
    images = QUICK_IMAGES_PER_EPOCH if args.quick else IMAGES_PER_EPOCH
    if args.quick:
        args.rounds, args.epochs = 1, 1

    import tensorflow as tf

    from slidesnake.model.build import build_model
    from slidesnake.model.data import pipeline
    from slidesnake.model.fit import set_determinism
    from slidesnake.pixels import pixel_source, store_entries
    from slidesnake.settings import AugmentSettings, ModelSettings
    from slidesnake.store import TileStore

    store = bench_store(args.work)
    index = store_entries(store)
    entries = pd.concat([index] * (images // len(index) + 1), ignore_index=True)
    entries = entries.iloc[:images]
    labels = (entries["row"].to_numpy() % 2).astype(np.int32)
    pixels = TileStore(store).read_tiles(entries).astype(np.float32)
    in_memory = tf.data.Dataset.from_tensor_slices((pixels, labels)).batch(BATCH).prefetch(tf.data.AUTOTUNE)
    augment = AugmentSettings.from_config(AUGMENT)
    source = pixel_source(entries)
    streamed_data = pipeline(source, batch_size=BATCH, labels=labels, shuffle_seed=0, augment=augment)
    set_determinism(0)
    settings = ModelSettings.from_config({**default_config()["model"], **MODEL})
    model = build_model(settings, tile_size=TILE, classes=["a", "b"])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    memory_rates, pipeline_rates = [], []
    for _ in range(args.rounds):
        memory_rates += _epoch_rates(model, in_memory, args.epochs, images)
        pipeline_rates += _epoch_rates(model, streamed_data, args.epochs, images)
    memory = statistics.median(memory_rates)
    streamed = statistics.median(pipeline_rates)
    print(f"tiles in store: {len(index)}, images per epoch: {images}, batch {BATCH}, {MODEL}")
    for name, rate, rates in (
        ("(a) in-memory tensors", memory, memory_rates),
        ("(b) Zarr input pipeline", streamed, pipeline_rates),
    ):
        print(f"{name:24s} {rate:7.1f} images/s  (epochs: {', '.join(f'{r:.1f}' for r in rates)})")
    print(f"bench training: pipeline_vs_memory={streamed / memory:.3f} pipeline_img_s={streamed:.1f}")


if __name__ == "__main__":
    main()
