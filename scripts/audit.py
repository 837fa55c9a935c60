"""Rule audit: the study's slide table (facts, tiling plans, QC)."""

from slidesnake.rules import run
from slidesnake.rules.ingest import audit

run(
    snakemake,
    audit,
    info_jsons=snakemake.input.info,
    tissue_jsons=snakemake.input.tissue,
    tiling_jsons=snakemake.input.tiling,
    out_tsv=snakemake.output.table,
)
