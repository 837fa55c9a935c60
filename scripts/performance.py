"""Rule performance: every model on every held-out set (test splits, external cohorts) side by side."""

from slidesnake.rules import run
from slidesnake.rules.report import performance

run(
    snakemake,
    performance,
    metrics_tsvs=snakemake.input.metrics,
    models=snakemake.params.models,
    out_tsv=snakemake.output.table,
)
