"""Rule label_tiles: a label per tile from annotations or the slide label."""

from slidesnake.labelling import label_slide
from slidesnake.snake import run

run(
    snakemake,
    label_slide,
    store=snakemake.input.store,
    info_json=snakemake.input.info,
    labels=snakemake.params.labels,
    annotations=(snakemake.input.annotations or [None])[0],
    slide_label=snakemake.params.slide_label,
    out_tsv=snakemake.output[0],
)
