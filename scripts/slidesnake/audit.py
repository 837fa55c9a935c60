"""The audit table, ``results/slides.tsv``: one row per slide of the study, its status, facts, plan and QC.

This module owns the table (:data:`AUDIT_TABLE`) and builds its rows from what ingest wrote into each
slide folder (the QC flags are :func:`slidesnake.qc.with_flags`'); rule ``audit`` only orchestrates. Splits,
provenance and the report pages read it here, without reaching the code that reads slides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .tables import StoredTable

#: Columns of ``results/slides.tsv`` taken from the slide facts, in order.
AUDIT_INFO = (
    "path",
    "vendor",
    "width",
    "height",
    "mpp_x",
    "mpp_y",
    "mpp_source",
    "file_mpp",
    "objective_power",
    "reader",
    "sha256",
)

_NUMBERS = (
    "width height mpp_x mpp_y file_mpp objective_power levels dense_share ink_mm2 mask_mpp tissue_area_mm2 "
    "blur_score blur_score_p25 level level0_per_target level_mpp scale store_mb target_height target_mpp "
    "target_width tile_mpp tile_size tiles_kept tiles_total tiles_unreadable tiles_written tissue_share"
).split()
_TEXTS = (
    "slide_id dataset status reason path vendor mpp_source reader sha256 associated_images background "
    "compressor resampling unreadable_first flags"
).split()

#: ``results/slides.tsv`` (rule ``audit``): the slide's status and why excluded, the facts of its file
#: (:data:`AUDIT_INFO`), its tissue QC, its tiling plan and QC, the QC flags, ``excluded``.
AUDIT_TABLE = StoredTable(
    paths=("results/slides.tsv",),
    columns={
        **dict.fromkeys(_TEXTS, "text"),
        **dict.fromkeys(_NUMBERS, "number"),
        "no_tissue": "bool",
        "excluded": "bool",
    },
)


def audit_row(
    info: Mapping[str, Any],
    tissue_qc: Mapping[str, Any],
    tiling_qc: Mapping[str, Any],
    *,
    dataset: str,
    quarantined: str | None,
) -> dict[str, Any]:
    """One slide's row (without its flags) from its slide folder's facts, tissue QC and tiling QC.

    A slide ingest kept but rule ``label_tiles`` quarantined (`quarantined`: the reason) is ``excluded``
    with that reason; ingest's own exclusion stands first.
    """
    row = {"slide_id": info["slide_id"], "dataset": dataset}
    row.update(status=tiling_qc["status"], reason=tiling_qc["reason"])
    row.update({key: info[key] for key in AUDIT_INFO})
    row["levels"] = len(info["level_dimensions"])
    row["associated_images"] = ",".join(info["associated_images"])
    row.update({k: v for k, v in tissue_qc.items() if k != "slide_id"})
    row.update({k: v for k, v in tiling_qc.items() if k != "slide_id"})
    if row["status"] == "ok" and quarantined:
        row.update(status="excluded", reason=quarantined)
    row["tissue_share"] = row.pop("mask_share", 0.0)
    return row
