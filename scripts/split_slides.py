"""Rule split_slides: patient-grouped train/val/test splits of a slide dataset, with the leakage check."""

from slidesnake.labelling import split_slides
from slidesnake.snake import run

run(
    snakemake,
    split_slides,
    dataset=snakemake.wildcards.dataset,
    patients=snakemake.params.patients,
    label_tsvs=snakemake.input.labels,
    info_jsons=snakemake.input.info,
    splits=snakemake.params.splits,
    positive_class=snakemake.params.positive_class,
    out_tsv=snakemake.output.splits,
    leakage_json=snakemake.output.leakage,
    balance_tsv=snakemake.output.balance,
)
