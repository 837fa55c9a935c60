"""Rule tile: the tiling plan, the tile grid and the slide's tissue tiles in one Zarr store."""

from slidesnake.rules import run
from slidesnake.rules.ingest import tile

run(
    snakemake,
    tile,
    info_json=snakemake.input.info,
    mask_png=snakemake.input.mask,
    tissue_qc_json=snakemake.input.tissue_qc,
    resolution=snakemake.params.resolution,
    tiling=snakemake.params.tiling,
    min_tissue_fraction=snakemake.params.min_tissue_fraction,
    on_bad_slide=snakemake.params.on_bad_slide,
    store=snakemake.output.store,
    grid_tsv=snakemake.output.grid,
    qc_json=snakemake.output.qc,
    threads=snakemake.threads,
)
