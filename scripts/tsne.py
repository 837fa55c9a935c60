"""Rule tsne: t-SNE map of the dataset model's features of its labelled entries."""

from slidesnake.rules import run
from slidesnake.rules.model import tsne

run(
    snakemake,
    tsne,
    dataset=snakemake.wildcards.dataset,
    entries_tsv=snakemake.input.entries,
    image_size=snakemake.params.image_size,
    model_path=snakemake.input.keras,
    model_json=snakemake.input.model_config,
    seed=snakemake.params.seed,
    tsne_png=snakemake.output.tsne,
    embedding_tsv=snakemake.output.embedding,
    threads=snakemake.params.tf_threads,
)
