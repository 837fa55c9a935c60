"""Rule split_cohort: a cohort's slides as one external split, checked against its model's training data."""

from slidesnake.rules import run
from slidesnake.rules.labels import label_table, split_cohort

run(
    snakemake,
    split_cohort,
    cohort=snakemake.wildcards.cohort,
    model=snakemake.params.model,
    slides=snakemake.params.slides,
    patients=snakemake.params.patients,
    label_tsvs=[
        label_table(folder, slide) for folder in snakemake.input.labels for slide in snakemake.params.slides
    ],
    audit_tsv=snakemake.input.audit,
    model_split_tsv=snakemake.input.model_splits,
    model_slides=snakemake.params.model_slides,
    positive_class=snakemake.params.positive_class,
    out_tsv=snakemake.output.splits,
    leakage_json=snakemake.output.leakage,
)
