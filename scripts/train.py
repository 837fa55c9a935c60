"""Rule train: the dataset's classifier, trained on its entries (tiles from Zarr stores, or images)."""

from slidesnake.rules import run
from slidesnake.rules.model import train

run(
    snakemake,
    train,
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
