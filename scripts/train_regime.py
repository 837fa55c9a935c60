"""Rule train_regime: the dataset's model trained another way (config datasets: <name>: regimes)."""

from slidesnake.rules import run
from slidesnake.rules.model import train_regime

run(
    snakemake,
    train_regime,
    regime=snakemake.wildcards.regime,
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
