"""Rule predict_patches: class probabilities of every image of a patch-folder dataset."""

from slidesnake.rules import run
from slidesnake.rules.predict import predict_patches

run(
    snakemake,
    predict_patches,
    model_path=snakemake.input.keras,
    model_json=snakemake.input.model_config,
    entries_tsv=snakemake.input.entries,
    classes=snakemake.params.classes,
    image_size=snakemake.params.image_size,
    out_tsv=snakemake.output.predictions,
    threads=snakemake.params.tf_threads,
)
