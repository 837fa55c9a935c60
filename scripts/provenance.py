"""Rule provenance: versions, workflow commit, config and sheet checksum of this run."""

from slidesnake.provenance import write_provenance
from slidesnake.snake import run

run(
    snakemake,
    write_provenance,
    config=snakemake.params.config,
    sheet_path=(snakemake.input.sheet or [None])[0],
    workflow_dir=snakemake.params.workflow_dir,
    out_json=snakemake.output[0],
)
