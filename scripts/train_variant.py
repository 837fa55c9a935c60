"""Rule train_variant: a cohort's variant of a dataset's model (settings changed by the cohort's variant)."""

from slidesnake.rules import run
from slidesnake.rules.model import train_variant

run(
    snakemake,
    train_variant,
    cohort=snakemake.wildcards.cohort,
    dataset=snakemake.wildcards.dataset,
    entries_tsv=snakemake.input.entries,
    classes=snakemake.params.classes,
    model_settings=snakemake.params.model_settings,
    image_size=snakemake.params.image_size,
    mpp=snakemake.params.mpp,
    model_path=snakemake.output.keras,
    history_tsv=snakemake.output.history,
    config_json=snakemake.output.config,
    features=snakemake.input.features,
    encoder=snakemake.params.encoder,
    init_model=snakemake.input.init[0] if snakemake.input.init else None,
    threads=snakemake.params.tf_threads,
)
