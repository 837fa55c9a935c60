"""Rule evaluate: metrics and figures of one dataset."""

from slidesnake.snake import run
from slidesnake.stages import evaluate_dataset

slides = snakemake.params.slides
run(
    snakemake,
    evaluate_dataset,
    dataset=snakemake.wildcards.dataset,
    split_tsv=snakemake.input.splits,
    label_tsvs=dict(zip(slides, snakemake.input.labels, strict=True)),
    tile_tsvs=dict(zip(slides, snakemake.input.tiles, strict=True)),
    history_tsv=snakemake.input.history,
    classes=snakemake.params.classes,
    positive_class=snakemake.params.positive_class,
    metrics_tsv=snakemake.output.metrics,
    slides_tsv=snakemake.output.slides,
    confusion_png=snakemake.output.confusion,
    roc_png=snakemake.output.roc,
    curves_png=snakemake.output.curves,
)
