"""Rule audit: the study's slide table (facts, tiling plans, QC)."""

from slidesnake.rules import run
from slidesnake.rules.ingest import audit

run(
    snakemake,
    audit,
    slide_dirs=snakemake.input.slides,
    out_tsv=snakemake.output.table,
    blur_ratio=snakemake.params.blur_ratio,
    label_dirs=snakemake.input.get("labels", []),
)
