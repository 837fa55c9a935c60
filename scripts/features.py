"""Rule features: one slide's stored tiles through one encoder, into its feature store."""

from slidesnake.rules import run
from slidesnake.rules.features import features

models = snakemake.input.get("keras") or []  # source dataset: that dataset's model; otherwise none
model_path = models if isinstance(models, str) else (models[0] if models else None)

run(
    snakemake,
    features,
    store=snakemake.input.store,
    encoder_name=snakemake.wildcards.encoder,
    encoder=snakemake.params.encoder,
    model_path=model_path,
    code=snakemake.params.code,
    out_store=snakemake.output.features,
    threads=snakemake.params.tf_threads,
)
