"""Rule tissue: thumbnail, tissue mask and tissue area of one slide."""

from slidesnake.rules import run
from slidesnake.rules.ingest import tissue

run(
    snakemake,
    tissue,
    info_json=snakemake.input.info,
    tissue=snakemake.params.tissue,
    thumbnail_png=snakemake.output.thumbnail,
    mask_png=snakemake.output.mask,
    qc_json=snakemake.output.qc,
)
