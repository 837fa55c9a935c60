"""Rule evaluate: metrics and figures of one dataset."""

from slidesnake.rules import run
from slidesnake.rules.report import evaluate

run(
    snakemake,
    evaluate,
    dataset=snakemake.wildcards.dataset,
    entries_tsv=snakemake.input.entries,
    prediction_tsvs=snakemake.input.predictions,
    classes=snakemake.params.classes,
    positive_class=snakemake.params.positive_class,
    history_tsv=snakemake.input.history,
    metrics_tsv=snakemake.output.metrics,
    items_tsv=snakemake.output.per_item,
    confusion_png=snakemake.output.confusion,
    roc_png=snakemake.output.roc,
    curves_png=snakemake.output.curves,
)
