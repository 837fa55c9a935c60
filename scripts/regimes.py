"""Rule regimes: each dataset's model and its regimes on the dataset's test split, one table."""

from slidesnake.rules import run
from slidesnake.rules.model import regimes

run(
    snakemake,
    regimes,
    models=snakemake.params.models,
    evaluation=snakemake.params.evaluation,
    regimes_tsv=snakemake.output.regimes,
    threads=snakemake.params.tf_threads,
)
