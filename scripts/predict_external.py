"""Rule predict_external: a slide of another dataset through a cohort's model: tile table and scores."""

from slidesnake.rules import run
from slidesnake.rules.predict import predict_external

run(
    snakemake,
    predict_external,
    model_path=snakemake.input.model,
    model_json=snakemake.input.model_config,
    store=snakemake.input.store,
    annotation_files=snakemake.input.annotations,
    labels=snakemake.params.labels,
    slide_label=snakemake.params.slide_label,
    model=snakemake.params.model,
    classes=snakemake.params.classes,
    positive_class=snakemake.params.positive_class,
    prediction=snakemake.params.prediction,
    tolerance=snakemake.params.tolerance,
    tiles_tsv=snakemake.output.tiles,
    scores_json=snakemake.output.scores,
    threads=snakemake.params.tf_threads,
)
