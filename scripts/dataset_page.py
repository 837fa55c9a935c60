"""Rule dataset_page: a dataset's or cohort's metrics, slide scores and split membership as HTML."""

from slidesnake.rules import run
from slidesnake.rules.report import dataset_page

run(
    snakemake,
    dataset_page,
    name=snakemake.wildcards.name,
    model=snakemake.params.model,
    metrics_tsv=snakemake.input.metrics,
    items_tsv=snakemake.input.per_item,
    class_auc_tsv=snakemake.input.class_auc,
    confusion_tsv=snakemake.input.confusion,
    split_tsv=snakemake.input.splits,
    leakage_json=snakemake.input.leakage,
    crossval_tsvs=snakemake.input.crossval,
    out_html=snakemake.output.page,
)
