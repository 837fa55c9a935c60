"""Rule label_tiles: a label per tile from the slide's annotations or its slide label."""

from slidesnake.rules import run
from slidesnake.rules.labels import label_tiles

run(
    snakemake,
    label_tiles,
    store=snakemake.input.store,
    labels=snakemake.params.labels,
    annotation_files=snakemake.input.annotations,
    slide_label=snakemake.params.slide_label,
    out_tsv=snakemake.output.labels,
)
