"""Rule train_mil: attention MIL and mean pooling, cross-validated on a dataset's stored tile features."""

from slidesnake.rules import run
from slidesnake.rules.mil import train_mil

run(
    snakemake,
    train_mil,
    dataset=snakemake.wildcards.dataset,
    splits_tsv=snakemake.input.splits,
    slides=snakemake.params.slides,
    feature_stores=snakemake.input.features,
    classes=snakemake.params.classes,
    mil=snakemake.params.mil,
    models_dir=snakemake.output.models,
    predictions_tsv=snakemake.output.predictions,
    attention_tsv=snakemake.output.attention,
    history_tsv=snakemake.output.history,
    threads=snakemake.params.tf_threads,
)
