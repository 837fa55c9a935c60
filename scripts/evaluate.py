"""Rule evaluate: metrics with confidence intervals, per-item table and figures of a dataset or cohort."""

from slidesnake.rules import run
from slidesnake.rules.report import evaluate

run(
    snakemake,
    evaluate,
    name=snakemake.wildcards.name,
    entries_tsv=snakemake.input.entries,
    prediction_tsvs=snakemake.input.predictions,
    score_jsons=snakemake.input.scores,
    history_tsv=snakemake.input.history,
    classes=snakemake.params.classes,
    positive_class=snakemake.params.positive_class,
    threshold=snakemake.params.threshold,
    evaluation=snakemake.params.evaluation,
    metrics_tsv=snakemake.output.metrics,
    items_tsv=snakemake.output.per_item,
    class_auc_tsv=snakemake.output.class_auc,
    confusion_tsv=snakemake.output.confusion_table,
    confusion_png=snakemake.output.confusion,
    roc_png=snakemake.output.roc,
    curves_png=snakemake.output.curves,
)
