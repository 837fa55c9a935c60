"""Rule ensemble: a cross-validated dataset's deployed model, the mean of its fold models."""

from slidesnake.rules import run
from slidesnake.rules.model import ensemble

run(
    snakemake,
    ensemble,
    dataset=snakemake.wildcards.dataset,
    fold_models=snakemake.input.models,
    fold_configs=snakemake.input.configs,
    fold_histories=snakemake.input.histories,
    model_path=snakemake.output.keras,
    history_tsv=snakemake.output.history,
    config_json=snakemake.output.config,
    threads=snakemake.params.tf_threads,
)
