"""Rule train: the dataset's classifier, from tiles in Zarr stores or from a patch folder."""
from slidesnake.snake import run, slide_inputs
from slidesnake.training import train_dataset

run(snakemake, train_dataset, dataset=snakemake.wildcards.dataset, split_tsv=snakemake.input.splits,
    classes=snakemake.params.classes, model_cfg=snakemake.params.model, size=snakemake.params.size,
    model_path=snakemake.output.model, history_tsv=snakemake.output.history,
    config_json=snakemake.output.config, threads=snakemake.threads, **slide_inputs(snakemake))
