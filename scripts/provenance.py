"""Rule provenance: versions, workflow commit, config and sheet checksum of this run."""

from slidesnake.rules import run
from slidesnake.rules.report import provenance

run(
    snakemake,
    provenance,
    config=snakemake.params.config,
    sheet_paths=snakemake.input.sheet,
    workflow_dir=snakemake.params.workflow_dir,
    out_json=snakemake.output.provenance,
)
