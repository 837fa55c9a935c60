"""Rule cross_site: every model on another site's slides, by stain setting (table and figure)."""

from slidesnake.rules import run
from slidesnake.rules.report import cross_site

run(
    snakemake,
    cross_site,
    metrics_tsvs=snakemake.input.metrics,
    in_site_tsvs=dict(zip(snakemake.params.models, snakemake.input.in_site, strict=True)),
    cohorts=snakemake.params.cohorts,
    table_tsv=snakemake.output.table,
    figure_png=snakemake.output.figure,
)
