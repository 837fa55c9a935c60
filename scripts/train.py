"""Rule train: the dataset's tile classifier."""

from slidesnake.snake import run
from slidesnake.stages import train_dataset

slides = snakemake.params.slides
run(
    snakemake,
    train_dataset,
    dataset=snakemake.wildcards.dataset,
    split_tsv=snakemake.input.splits,
    label_tsvs=dict(zip(slides, snakemake.input.labels, strict=True)),
    stores=dict(zip(slides, snakemake.input.stores, strict=True)),
    classes=snakemake.params.classes,
    model_cfg=snakemake.params.model,
    tile_size=snakemake.params.tile_size,
    model_path=snakemake.output.model,
    history_tsv=snakemake.output.history,
    config_json=snakemake.output.config,
    threads=snakemake.threads,
)
