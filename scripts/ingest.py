"""Rule ingest: one slide's facts, thumbnail, tissue mask, tile grid and tiles in one Zarr store."""

from slidesnake.rules import run
from slidesnake.rules.ingest import ingest

run(
    snakemake,
    ingest,
    slide_path=snakemake.input.slide,
    slide_id=snakemake.wildcards.slide,
    slide_settings=snakemake.params.slide_settings,
    mpp_override=snakemake.params.mpp_override,
    tissue_config=snakemake.params.tissue,
    on_bad_slide=snakemake.params.on_bad_slide,
    slide_dir=snakemake.output.slide,
    store=snakemake.output.store,
    threads=snakemake.threads,
)
