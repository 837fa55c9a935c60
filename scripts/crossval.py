"""Rule crossval: a dataset's out-of-fold predictions; metrics per fold, pooled and across folds, ROCs."""

from slidesnake.rules import run
from slidesnake.rules.report import crossval

run(
    snakemake,
    crossval,
    dataset=snakemake.wildcards.dataset,
    oof_tsvs=snakemake.input.oof,
    classes=snakemake.params.classes,
    positive_class=snakemake.params.positive_class,
    threshold=snakemake.params.threshold,
    slide_score=snakemake.params.slide_score,
    evaluation=snakemake.params.evaluation,
    metrics_tsv=snakemake.output.metrics,
    oof_tsv=snakemake.output.oof,
    roc_png=snakemake.output.roc,
)
