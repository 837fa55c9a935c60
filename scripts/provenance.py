"""Rule provenance: software, code state, machine, command line, config and input checksums of this run."""

from slidesnake.rules import run
from slidesnake.rules.report import provenance

run(
    snakemake,
    provenance,
    config=snakemake.params.config,
    sheet_paths=snakemake.input.sheet,
    audit_tsvs=snakemake.input.audit,
    annotation_files=snakemake.input.annotations,
    workflow_dir=snakemake.params.workflow_dir,
    runs_log=snakemake.params.runs_log,
    out_json=snakemake.output.provenance,
)
