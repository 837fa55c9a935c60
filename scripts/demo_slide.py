"""Rule demo_slide: one generated slide of the demo study and its annotations."""

from slidesnake.rules import run
from slidesnake.rules.demo import demo_slide

run(
    snakemake,
    demo_slide,
    svs_path=snakemake.output.slide,
    geojson_path=snakemake.output.annotations,
    slide_id=snakemake.wildcards.slide,
    dataset=snakemake.params.dataset,
    small=snakemake.params.small,
)
