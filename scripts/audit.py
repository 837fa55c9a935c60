"""Rule audit: the study's slide table (metadata, resolution decisions, QC)."""

from slidesnake.snake import run
from slidesnake.stages import audit_table

run(
    snakemake,
    audit_table,
    info_jsons=snakemake.input.info,
    tissue_jsons=snakemake.input.tissue,
    tile_jsons=snakemake.input.tiling,
    out_tsv=snakemake.output[0],
)
