"""Rule tile: the slide's tissue tiles into one Zarr store."""

from slidesnake.snake import run
from slidesnake.stages import tile_slide

run(
    snakemake,
    tile_slide,
    info_json=snakemake.input.info,
    grid_tsv=snakemake.input.grid,
    tiling=snakemake.params.tiling,
    store=snakemake.output.store,
    qc_json=snakemake.output.qc,
    threads=snakemake.threads,
)
