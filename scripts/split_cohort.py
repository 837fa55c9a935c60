"""Rule split_cohort: a cohort's slides as one external split, checked against its model's training data."""

from slidesnake.rules import run
from slidesnake.rules.labels import split_cohort

run(
    snakemake,
    split_cohort,
    cohort=snakemake.wildcards.cohort,
    model=snakemake.params.model,
    slides=snakemake.params.slides,
    patients=snakemake.params.patients,
    label_tsvs=snakemake.input.labels,
    info_jsons=snakemake.input.info,
    tiling_qc_jsons=snakemake.input.tiling,
    model_split_tsv=snakemake.input.model_splits,
    model_info_jsons=snakemake.input.model_info,
    positive_class=snakemake.params.positive_class,
    out_tsv=snakemake.output.splits,
    leakage_json=snakemake.output.leakage,
)
