"""Rule evaluate: metrics and figures of one dataset."""

from slidesnake.evaluation import evaluate_dataset
from slidesnake.snake import run

slides = snakemake.params.slides
inputs = {"patches_tsv": snakemake.input.get("patches")}
if slides:
    inputs = {
        "split_tsv": snakemake.input.splits,
        "label_tsvs": dict(zip(slides, snakemake.input.labels, strict=True)),
        "tile_tsvs": dict(zip(slides, snakemake.input.tiles, strict=True)),
    }
run(
    snakemake,
    evaluate_dataset,
    dataset=snakemake.wildcards.dataset,
    classes=snakemake.params.classes,
    positive_class=snakemake.params.positive_class,
    history_tsv=snakemake.input.history,
    metrics_tsv=snakemake.output.metrics,
    items_tsv=snakemake.output.per_item,
    confusion_png=snakemake.output.confusion,
    roc_png=snakemake.output.roc,
    curves_png=snakemake.output.curves,
    **inputs,
)
