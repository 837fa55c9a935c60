"""Rule study_pages: the study summary, the QC cohort page and the provenance as HTML pages."""

from slidesnake.rules import run
from slidesnake.rules.report import study_pages
from slidesnake.slide_folder import slide_files

run(
    snakemake,
    study_pages,
    audit_tsvs=snakemake.input.audit,
    thumbnails=slide_files(snakemake.input.slides, "thumbnail"),
    masks=slide_files(snakemake.input.slides, "mask"),
    performance_tsv=snakemake.input.performance,
    cross_site_tsvs=snakemake.input.cross_site,
    cross_site_pngs=snakemake.input.cross_site_figure,
    regimes_tsvs=snakemake.input.regimes,
    provenance_json=snakemake.input.provenance,
    datasets=snakemake.params.datasets,
    cohorts=snakemake.params.cohorts,
    homes=snakemake.params.homes,
    summary_html=snakemake.output.summary,
    qc_html=snakemake.output.qc,
    provenance_html=snakemake.output.provenance,
)
