"""Rule predict_patches: class probabilities of every image of a patch-folder dataset."""

from slidesnake.snake import run
from slidesnake.training import predict_patches

run(
    snakemake,
    predict_patches,
    model_path=snakemake.input.model,
    split_tsv=snakemake.input.splits,
    classes=snakemake.params.classes,
    size=snakemake.params.size,
    out_tsv=snakemake.output[0],
    threads=snakemake.threads,
)
