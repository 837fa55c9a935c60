"""Rule entries: the dataset's labelled model inputs (tiles or images) with split and patient."""

from slidesnake.rules import run
from slidesnake.rules.labels import entries, label_table

run(
    snakemake,
    entries,
    split_tsv=snakemake.input.splits,
    classes=snakemake.params.classes,
    slides=snakemake.params.slides,
    label_tsvs=[
        label_table(folder, slide) for folder in snakemake.input.labels for slide in snakemake.params.slides
    ],
    stores=snakemake.input.stores,
    out_tsv=snakemake.output.entries,
)
