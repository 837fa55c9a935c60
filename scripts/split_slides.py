"""Rule split_slides: patient-grouped train/val/test splits of a slide dataset, with the leakage check."""

from slidesnake.rules import run
from slidesnake.rules.labels import label_table, split_slides

run(
    snakemake,
    split_slides,
    dataset=snakemake.wildcards.dataset,
    slides=snakemake.params.slides,
    patients=snakemake.params.patients,
    sites=snakemake.params.sites,
    label_tsvs=[
        label_table(folder, slide) for folder in snakemake.input.labels for slide in snakemake.params.slides
    ],
    audit_tsv=snakemake.input.audit,
    splits=snakemake.params.splits,
    positive_class=snakemake.params.positive_class,
    out_tsv=snakemake.output.splits,
    leakage_json=snakemake.output.leakage,
    balance_tsv=snakemake.output.balance,
)
