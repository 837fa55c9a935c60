"""DAG benchmark: ``snakemake -n`` on a 10,000-slide study against a bare Snakefile's floor.

It writes, into a work folder, a study of ``--slides`` slides (default 10,000; every slide file is
a symlink to CMU-1-Small-Region.svs, so the files exist, in two annotation datasets with one
GeoJSON for all), and times, in the same run:

(a) the floor: a bare Snakefile with the same slide ids and one trivial rule per slide, ``-n``;
(b) slidesnake's workflow on the study, ``-n`` (every job planned, nothing run), with its peak RSS;
(c) for scale, the floor of any train-then-predict workflow: a bare Snakefile with two trivial rules
    per slide (one before the model, one after it: slidesnake's ingest and predict), ``-n``.

The last line has a fixed form that other tools parse::

    bench dag: slides=<n> dryrun_s=<(b) seconds> dryrun_vs_floor=<(b)/(a)> rss_gb=<peak RSS of (b)>

``--quick`` does the same on a study of 20 slides (unless ``--slides`` says otherwise): the check
that the benchmark still runs (``tests/test_bench.py``), not a measurement.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml
from common import ROOT

CMU = ROOT.parent / "shared" / "data" / "slides" / "CMU-1-Small-Region.svs"
FLOOR = """\
import pandas as pd
SLIDES = pd.read_csv("slides.tsv", sep="\\t")["slide_id"].tolist()
rule all:
    input: expand("out/{slide}.txt", slide=SLIDES)
rule one:
    output: "out/{slide}.txt"
    shell: "touch {output}"
"""


#: (c): two trivial rules per slide, the second after a model that waits (through a table, as
#: slidesnake's train waits through its entries table) on every slide's first.
TWO_STAGES = """\
import pandas as pd
SLIDES = pd.read_csv("slides.tsv", sep="\\t")["slide_id"].tolist()
rule all:
    input: expand("out/{slide}.second.txt", slide=SLIDES)
rule first:
    output: "out/{slide}.first.txt"
    shell: "touch {output}"
rule table:
    input: expand("out/{slide}.first.txt", slide=SLIDES)
    output: "out/table.txt"
    shell: "touch {output}"
rule model:
    input: "out/table.txt"
    output: "out/model.txt"
    shell: "touch {output}"
rule second:
    input: "out/model.txt", "out/{slide}.first.txt"
    output: "out/{slide}.second.txt"
    shell: "touch {output}"
"""


def write_study(folder: Path, slides: int) -> None:
    """Write a study folder of ``slides`` slides (symlinks to CMU-1), its sheet and config."""
    files = folder / "slides"
    files.mkdir(parents=True)
    (folder / "none.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    rows = []
    for k in range(slides):
        slide_id = f"S{k:05d}"
        (files / f"{slide_id}.svs").symlink_to(CMU)
        dataset = "site_a" if k % 2 else "site_b"
        rows.append((slide_id, f"P{k // 4:05d}{dataset}", dataset, f"slides/{slide_id}.svs", "none.geojson"))
    columns = ["slide_id", "patient_id", "dataset", "path", "annotations"]
    pd.DataFrame(rows, columns=columns).to_csv(folder / "slides.tsv", sep="\t", index=False)
    labels = {"source": "annotations", "classes": ["normal", "tumor"], "unannotated": "normal"}
    dataset = {"labels": labels, "positive_class": "tumor"}
    config = {"slides": "slides.tsv", "datasets": {"site_a": dataset, "site_b": dataset}}
    (folder / "config").mkdir()
    (folder / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "Snakefile").write_text(FLOOR)
    (folder / "TwoStages.smk").write_text(TWO_STAGES)


def dry_run(command: list[str], folder: Path) -> tuple[float, float]:
    """Seconds and peak RSS (GB) of one ``snakemake -n`` in ``folder``."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9
    return seconds, peak


def main(argv: list[str] | None = None) -> None:
    """Command line: write the study, time (a) and (b), print the figures."""
    parser = argparse.ArgumentParser(prog="benchmarks/dag.py", description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / ".bench" / "dag", help="study folder")
    parser.add_argument("--slides", type=int, help="slides of the study (default 10,000; 20 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a 20-slide study: checks that the bench runs")
    args = parser.parse_args(argv)
    if args.slides is None:
        args.slides = 20 if args.quick else 10_000
    if args.work.exists():
        shutil.rmtree(args.work)
    write_study(args.work, args.slides)
    snakemake = [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--quiet", "all"]
    one, five, _ = os.getloadavg()
    print(
        f"bench dag: {args.slides} slides in {args.work}, load average {one:.2f} (1 min) {five:.2f} (5 min)"
    )
    floor, _ = dry_run([*snakemake, "-s", "Snakefile"], args.work)
    print(f"(a) bare Snakefile, one rule per slide, -n: {floor:.1f} s")
    ours, rss = dry_run([*snakemake, "-s", str(ROOT / "workflow" / "Snakefile")], args.work)
    print(f"(b) slidesnake -n: {ours:.1f} s, peak RSS {rss:.2f} GB (targets: (b)/(a) <= 3, < 60 s)")
    two, _ = dry_run([*snakemake, "-s", "TwoStages.smk"], args.work)
    print(
        f"(c) bare Snakefile, two rules per slide around a model, -n: {two:.1f} s, (b)/(c) {ours / two:.2f}"
    )
    print(
        f"bench dag: slides={args.slides} dryrun_s={ours:.1f} dryrun_vs_floor={ours / floor:.2f} "
        f"rss_gb={rss:.2f}",
        flush=True,
    )
    shutil.rmtree(args.work)


if __name__ == "__main__":
    main()
