"""Rule tsne: t-SNE map of the dataset model's features of labelled tiles or images."""

from slidesnake.snake import run
from slidesnake.training import embed_dataset

slides = snakemake.params.slides
slide_inputs = {}
if slides:
    slide_inputs = {
        "label_tsvs": dict(zip(slides, snakemake.input.labels, strict=True)),
        "stores": dict(zip(slides, snakemake.input.stores, strict=True)),
    }
run(
    snakemake,
    embed_dataset,
    dataset=snakemake.wildcards.dataset,
    split_tsv=snakemake.input.splits,
    classes=snakemake.params.classes,
    size=snakemake.params.size,
    model_path=snakemake.input.model,
    tsne_png=snakemake.output.tsne,
    embedding_tsv=snakemake.output.embedding,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
    **slide_inputs,
)
