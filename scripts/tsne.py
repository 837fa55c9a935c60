"""Rule tsne: t-SNE map of the dataset model's features of labelled tiles or images."""
from slidesnake.snake import run, slide_inputs
from slidesnake.training import embed_dataset

run(snakemake, embed_dataset, dataset=snakemake.wildcards.dataset, split_tsv=snakemake.input.splits,
    classes=snakemake.params.classes, size=snakemake.params.size, model_path=snakemake.input.model,
    tsne_png=snakemake.output.tsne, embedding_tsv=snakemake.output.embedding, seed=snakemake.params.seed,
    threads=snakemake.threads, **slide_inputs(snakemake))
