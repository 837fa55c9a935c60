"""Rule label_tiles: a label per tile of every slide of a dataset, from annotations or slide labels."""

from slidesnake.rules import run
from slidesnake.rules.labels import label_tiles

run(
    snakemake,
    label_tiles,
    slides=snakemake.params.slides,
    stores=snakemake.input.stores,
    labels=snakemake.params.labels,
    annotation_files=snakemake.params.annotation_files,
    slide_labels=snakemake.params.slide_labels,
    out_dir=snakemake.output.labels,
    on_bad_slide=snakemake.params.on_bad_slide,
)
