"""Rule split_patches: splits of a patch-folder dataset, grouped by patient and identical images."""

from slidesnake.rules import run
from slidesnake.rules.labels import split_patches

run(
    snakemake,
    split_patches,
    dataset=snakemake.wildcards.dataset,
    patches=snakemake.params.patches,
    classes=snakemake.params.classes,
    splits=snakemake.params.splits,
    out_tsv=snakemake.output.splits,
    leakage_json=snakemake.output.leakage,
    balance_tsv=snakemake.output.balance,
)
