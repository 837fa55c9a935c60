"""Rule split: patient-grouped train/val/test splits of one dataset, with the leakage check."""

from slidesnake.snake import run
from slidesnake.stages import split_dataset

run(
    snakemake,
    split_dataset,
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
