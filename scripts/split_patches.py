"""Rule split_patches: splits of a patch-folder dataset, grouped by patient and identical images."""

from slidesnake.labelling import split_patches
from slidesnake.snake import run

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
