"""Feature benchmark: rule ``features`` on a tile store against the same encoder's forward pass.

On the tile store of a real-tissue bench slide (20,000 x 16,000 px at 0.25 um/px, built once into
``.bench/`` and tiled with the default config: 128 px tiles at 0.5 um/px), with DenseNet121 at 224 px
(random weights: speed does not depend on them; the tiles' 64 um field of view at 0.286 um/px, so
the encoder resizes them, in (a) and (b) alike), it times on the same cores:

(a) the forward pass alone: the encoder's ``embed`` on the same tiles, already in memory, in batches
    of the rule's batch size;
(b) the workflow's ``features`` rule function: read the tiles from Zarr shard by shard, embed them,
    write the float16 feature store; in a child process that reports its peak RSS.

Each runs twice, interleaved (a, b, a, b), and each figure is the faster of its two runs. The last
line has a fixed form that other tools parse::

    bench features: encoder=densenet121 features_vs_forward=<(b)/(a) tiles/s> tiles_per_s=<(b)> rss_gb=<(b)>

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
from tiling import QUICK_SIZE, child_tiling, ensure_slide

#: The bench slide of this benchmark: some 1,700 tissue tiles, so that loading the encoder (seconds) is a
#: small part of the job, as on a real slide.
FEATURES_SIZE = (20000, 16000)
ENCODER = "densenet121"


def encoder_config() -> dict:
    """DenseNet121 at 224 px over the default tiles' field of view, random weights, as the config has it."""
    config = default_config()
    field_um = config["tiling"]["tile_size"] * config["resolution"]["target_mpp"]
    return {
        "source": "keras_application",
        "architecture": ENCODER,
        "weights": "random",
        "input_size": 224,
        "mpp": field_um / 224,
        "normalization": "application",
        "licence": "MIT",
        "gated": False,
    }


def child_forward(work: Path, threads: int) -> dict:
    """Time (a): the encoder's forward pass over the store's tiles held in memory."""
    from slidesnake.features.encoders import EncoderSpec
    from slidesnake.features.loading import load_encoder
    from slidesnake.rules.features import FEATURE_BATCH
    from slidesnake.store.tiles import TileStore

    store = TileStore(work / "bench.zarr")
    tiles = store.read_tiles(store.index)
    spec = EncoderSpec.from_config(ENCODER, encoder_config())
    encoder = load_encoder(spec, base_dir=work, threads=threads)
    encoder.embed(tiles[:FEATURE_BATCH])  # build and trace first, as (b) does on its first batch
    start = time.perf_counter()
    for first in range(0, len(tiles), FEATURE_BATCH):
        encoder.embed(tiles[first : first + FEATURE_BATCH])
    return {"seconds": time.perf_counter() - start, "tiles": len(tiles)}


def child_features(work: Path, threads: int) -> dict:
    """Time (b): the workflow's features rule function on the store (the encoder loaded inside it)."""
    import keras  # noqa: F401  (imported before the clock starts, as in (a): a job pays it once)

    from slidesnake.features.store import FeatureStore
    from slidesnake.rules.features import features

    out = work / "features.zarr"
    start = time.perf_counter()
    features(
        store=str(work / "bench.zarr"),
        encoder_name=ENCODER,
        encoder=encoder_config(),
        model_path=None,
        code="bench",
        out_store=str(out),
        threads=threads,
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    return {"seconds": seconds, "tiles": FeatureStore(out).count, "peak_rss_gb": peak}


def main(argv: list[str] | None = None) -> None:
    """Command line: tile the bench slide, time (a) and (b), print the figures."""
    parser = argparse.ArgumentParser(prog="benchmarks/features.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".bench", help="cache and work folder")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--quick", action="store_true", help="a 2000x1500 px slide, one run each: checks that the bench runs"
    )
    parser.add_argument("--child", choices=["prepare", "forward", "features"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--slide", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "prepare":
        child_tiling(args.slide, args.work, args.threads)
        return
    if args.child:
        run = child_forward if args.child == "forward" else child_features
        print(json.dumps(run(args.work, args.threads)))
        return
    slide = ensure_slide(args.out, QUICK_SIZE if args.quick else FEATURES_SIZE)
    work = args.out / "features"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    run_child(__file__, "prepare", work, args.threads, slide)
    one, five, _ = os.getloadavg()
    load = f"load average {one:.2f} (1 min) {five:.2f} (5 min)"
    print(f"bench features on {slide.name}, {args.threads} threads, {load}")
    runs = {"forward": [], "features": []}
    rounds = 1 if args.quick else 2  # interleaved, each figure the faster of its runs: drift hits both alike
    for _ in range(rounds):
        for mode, found in runs.items():
            shutil.rmtree(work / "features.zarr", ignore_errors=True)
            found.append(run_child(__file__, mode, work, args.threads))
    forward, b = (min(found, key=lambda r: r["seconds"]) for found in runs.values())
    rss = max(r["peak_rss_gb"] for r in runs["features"])
    a_rate, b_rate = forward["tiles"] / forward["seconds"], b["tiles"] / b["seconds"]
    print(f"(a) {ENCODER} forward pass on {forward['tiles']} tiles in memory: {forward['seconds']:.2f} s")
    print(
        f"(b) features rule (Zarr -> {ENCODER} -> float16 feature store): {b['seconds']:.2f} s, "
        f"peak RSS {rss:.2f} GB (targets: (b)/(a) >= 0.9, < 2 GB)"
    )
    print(
        f"bench features: encoder={ENCODER} features_vs_forward={b_rate / a_rate:.2f} "
        f"tiles_per_s={b_rate:.1f} rss_gb={rss:.2f}",
        flush=True,
    )
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
