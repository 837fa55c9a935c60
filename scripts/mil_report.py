"""Rule mil_report: a MIL dataset's metrics, attention checked against annotations, attention maps, page."""

from slidesnake.rules import run
from slidesnake.rules.mil import mil_report

run(
    snakemake,
    mil_report,
    dataset=snakemake.wildcards.dataset,
    predictions_tsv=snakemake.input.predictions,
    attention_tsv=snakemake.input.attention,
    slides=snakemake.params.slides,
    slide_dirs=snakemake.input.slides,
    tile_stores=snakemake.input.stores,
    annotation_files=snakemake.params.annotation_files,
    classes=snakemake.params.classes,
    positive_class=snakemake.params.positive_class,
    mil=snakemake.params.mil,
    evaluation=snakemake.params.evaluation,
    metrics_tsv=snakemake.output.metrics,
    mil_metrics_tsv=snakemake.output.mil_metrics,
    attention_check_tsv=snakemake.output.attention_check,
    roc_png=snakemake.output.roc,
    page_html=snakemake.output.page,
    attention_dir=snakemake.output.attention,
)
