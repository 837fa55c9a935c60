"""Rule predict: tile probabilities, probability map, heatmap and scores of one slide."""

from slidesnake.rules import run
from slidesnake.rules.model import predict

run(
    snakemake,
    predict,
    model_path=snakemake.input.model,
    store=snakemake.input.store,
    thumbnail_png=snakemake.input.thumbnail,
    classes=snakemake.params.classes,
    positive_class=snakemake.params.positive_class,
    tiles_tsv=snakemake.output.tiles,
    map_store=snakemake.output.map,
    heatmap_png=snakemake.output.heatmap,
    scores_json=snakemake.output.scores,
    threads=snakemake.threads,
)
