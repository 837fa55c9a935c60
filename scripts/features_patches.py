"""Rule features_patches: every image of a patch-folder dataset through one encoder, into one store."""

from slidesnake.rules import run
from slidesnake.rules.features import features_patches

models = snakemake.input.get("keras") or []  # source dataset: that dataset's model; otherwise none
model_path = models if isinstance(models, str) else (models[0] if models else None)

run(
    snakemake,
    features_patches,
    entries_tsv=snakemake.input.entries,
    dataset=snakemake.wildcards.dataset,
    image_size=snakemake.params.image_size,
    mpp=snakemake.params.mpp,
    encoder_name=snakemake.wildcards.encoder,
    encoder=snakemake.params.encoder,
    model_path=model_path,
    code=snakemake.params.code,
    out_store=snakemake.output.features,
    threads=snakemake.params.tf_threads,
)
