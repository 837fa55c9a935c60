"""Rule audit: the study's slide table (facts, tiling plans, QC)."""

from slidesnake.rules import run
from slidesnake.rules.ingest import audit

run(
    snakemake,
    audit,
    slide_dirs=snakemake.input.slides,
    out_tsv=snakemake.output.table,
    qc=snakemake.params.qc,
    datasets=snakemake.params.datasets,
    label_dirs=snakemake.input.get("labels", []),
)
