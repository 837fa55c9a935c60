"""Rule train: the dataset's classifier, from tiles in Zarr stores or from a patch folder."""

from slidesnake.snake import run
from slidesnake.training import train_dataset

slides = snakemake.params.slides
slide_inputs = {}
if slides:
    slide_inputs = {
        "label_tsvs": dict(zip(slides, snakemake.input.labels, strict=True)),
        "stores": dict(zip(slides, snakemake.input.stores, strict=True)),
    }
run(
    snakemake,
    train_dataset,
    dataset=snakemake.wildcards.dataset,
    split_tsv=snakemake.input.splits,
    classes=snakemake.params.classes,
    model_cfg=snakemake.params.model,
    size=snakemake.params.size,
    model_path=snakemake.output.model,
    history_tsv=snakemake.output.history,
    config_json=snakemake.output.config,
    threads=snakemake.threads,
    **slide_inputs,
)
