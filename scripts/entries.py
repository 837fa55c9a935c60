"""Rule entries: the dataset's labelled model inputs (tiles or images) with split and patient."""

from slidesnake.rules import run
from slidesnake.rules.labels import entries

run(
    snakemake,
    entries,
    split_tsv=snakemake.input.splits,
    classes=snakemake.params.classes,
    slides=snakemake.params.slides,
    label_tsvs=snakemake.input.labels,
    stores=snakemake.input.stores,
    out_tsv=snakemake.output.entries,
)
