"""Rule slide_info: what the slide file is (levels, MPP, checksum, reader)."""

from slidesnake.rules import run
from slidesnake.rules.ingest import slide_info

run(
    snakemake,
    slide_info,
    slide_path=snakemake.input.slide,
    slide_id=snakemake.wildcards.slide,
    sheet_mpp=snakemake.params.sheet_mpp,
    mpp_override=snakemake.params.mpp_override,
    on_bad_slide=snakemake.params.on_bad_slide,
    info_json=snakemake.output.info,
)
