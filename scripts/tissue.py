"""Rule tissue: tissue mask, tile grid with tissue fractions and tissue QC of one slide."""

from slidesnake.snake import run
from slidesnake.stages import detect_tissue

run(
    snakemake,
    detect_tissue,
    info_json=snakemake.input.info,
    tissue=snakemake.params.tissue,
    tile_size=snakemake.params.tile_size,
    thumbnail_png=snakemake.output.thumbnail,
    mask_png=snakemake.output.mask,
    grid_tsv=snakemake.output.grid,
    qc_json=snakemake.output.qc,
)
