"""Rule train_fold: one fold's model, trained on the other folds, and its out-of-fold predictions."""

from slidesnake.rules import run
from slidesnake.rules.model import train_fold

run(
    snakemake,
    train_fold,
    dataset=snakemake.wildcards.dataset,
    fold=int(snakemake.wildcards.fold),
    entries_tsv=snakemake.input.entries,
    classes=snakemake.params.classes,
    model_settings=snakemake.params.model_settings,
    image_size=snakemake.params.image_size,
    mpp=snakemake.params.mpp,
    model_path=snakemake.output.keras,
    history_tsv=snakemake.output.history,
    config_json=snakemake.output.config,
    oof_tsv=snakemake.output.oof,
    features=snakemake.input.features,
    encoder=snakemake.params.encoder,
    init_model=snakemake.input.init[0] if snakemake.input.init else None,
    threads=snakemake.params.tf_threads,
)
