"""Rule slide_info: metadata and resolution decision of one slide."""

from slidesnake.snake import run
from slidesnake.stages import slide_info

run(
    snakemake,
    slide_info,
    slide_path=snakemake.input[0],
    slide_id=snakemake.wildcards.slide,
    info_json=snakemake.output[0],
    resolution=snakemake.params.resolution,
    sheet_mpp=snakemake.params.sheet_mpp,
)
