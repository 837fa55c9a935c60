"""Rule train: the dataset's classifier, trained on its entries (tiles from Zarr stores, or images)."""

from slidesnake.rules import run
from slidesnake.rules.model import train

run(
    snakemake,
    train,
    dataset=snakemake.wildcards.dataset,
    entries_tsv=snakemake.input.entries,
    classes=snakemake.params.classes,
    model=snakemake.params.model,
    image_size=snakemake.params.image_size,
    mpp=snakemake.params.mpp,
    model_path=snakemake.output.model,
    history_tsv=snakemake.output.history,
    config_json=snakemake.output.config,
    threads=snakemake.params.tf_threads,
)
