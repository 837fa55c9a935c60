"""Rule demo_slide: one generated slide of the demo study and its annotations."""

from slidesnake.demo import write_demo_slide
from slidesnake.snake import run

run(
    snakemake,
    write_demo_slide,
    svs_path=snakemake.output.slide,
    geojson_path=snakemake.output.annotations,
    slide_id=snakemake.wildcards.slide,
    dataset=snakemake.params.dataset,
)
