"""Slide QC flags: what a reviewer should look at in a slide's numbers (``results/slides.tsv``, the QC page).

Flags say what was found and against what; they never exclude a slide. Some compare a slide with the
study (blur, tissue area: against the median slide), others stand alone (pen ink, a fold, an odd mask).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .settings import ConfigSection
from .wsi.resolution import sheet_mpp_mismatch

#: What the blur score is, for flags and pages.
BLUR_UNIT = "variance of the Laplacian at 1 um/px, x 1e4; higher is sharper"
#: A tissue mask covering more of the slide than this is suspicious (a dark background, a bad threshold).
FULL_MASK = 0.95


@dataclass(frozen=True, kw_only=True)
class QCSettings(ConfigSection):
    """The config's ``qc`` section (defaults in the schema)."""

    blur_ratio: float
    pen_mm2: float
    fold_share: float
    min_tissue_ratio: float


def _median(rows: Sequence[Mapping[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r["status"] == "ok" and r.get(key) is not None]
    return float(np.median(values)) if values else None


def study_flags(rows: Sequence[Mapping[str, Any]], settings: QCSettings) -> list[list[str]]:
    """Each slide's flags (aligned with `rows`, the audit rows): its own, and against its dataset's slides.

    Blur and tissue area are compared with the median slide of the same ``dataset`` (a site's scanner
    sets its sharpness, its specimens the tissue area); rows without a dataset form one group.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get("dataset") or "", []).append(row)
    blur = {name: _median(group, "blur_score") for name, group in groups.items()}
    area = {name: _median(group, "tissue_area_mm2") for name, group in groups.items()}
    flags = []
    for row in rows:
        group = row.get("dataset") or ""
        flags.append(
            slide_flags(row)
            + artefact_flags(row, settings)
            + tissue_flags(row, median_area=area[group], ratio=settings.min_tissue_ratio)
            + blur_flags(row, median_blur=blur[group], ratio=settings.blur_ratio)
        )
    return flags


def artefact_flags(row: Mapping[str, Any], settings: QCSettings) -> list[str]:
    """Pen or marker ink on the slide, and a fold (tissue dark in both stains)."""
    flags = []
    if (row.get("ink_mm2") or 0.0) >= settings.pen_mm2:
        flags.append(f"pen or marker ink: {row['ink_mm2']:.3f} mm2 (left out of the tissue mask)")
    if (row.get("dense_share") or 0.0) >= settings.fold_share:
        flags.append(
            f"a fold or thick section? {100 * row['dense_share']:.0f}% of the tissue is dark in both "
            "hematoxylin and eosin"
        )
    return flags


def tissue_flags(row: Mapping[str, Any], *, median_area: float | None, ratio: float) -> list[str]:
    """Almost no tissue: the slide's tissue area under `ratio` x the dataset's median slide."""
    if row["status"] != "ok" or median_area is None or row.get("tissue_area_mm2") is None:
        return []
    if row["tissue_area_mm2"] < ratio * median_area:
        return [
            f"almost no tissue: {row['tissue_area_mm2']:.3f} mm2, {row.get('tiles_kept', 0)} tissue tiles "
            f"(the dataset's median slide has {median_area:.2f} mm2)"
        ]
    return []


def blur_flags(row: Mapping[str, Any], *, median_blur: float | None, ratio: float) -> list[str]:
    """Out of focus, whole or in part: the slide's blur score against the dataset's median slide."""
    if row["status"] != "ok" or median_blur is None or row.get("blur_score") is None:
        return []
    floor = ratio * median_blur
    if row["blur_score"] < floor:
        return [
            f"out of focus? blur score {row['blur_score']:.1f} under {ratio:g} x the dataset's median "
            f"{median_blur:.1f} ({BLUR_UNIT})"
        ]
    if row.get("blur_score_p25") is not None and row["blur_score_p25"] < floor:
        return [
            f"a blurred region? a quarter of its tissue tiles score under {row['blur_score_p25']:.1f}, "
            f"below {ratio:g} x the dataset's median {median_blur:.1f} ({BLUR_UNIT})"
        ]
    return []


def slide_flags(row: Mapping[str, Any]) -> list[str]:
    """What a reviewer should look at in a slide's own QC numbers."""
    flags = []
    if row["status"] == "excluded":
        flags.append(f"excluded: {row['reason']}")
    if row.get("tiles_unreadable"):
        flags.append(
            f"{row['tiles_unreadable']} of {row['tiles_kept']} tissue tiles unreadable (a corrupt or "
            f"truncated file?), left out; first: {row['unreadable_first']}"
        )
    if row.get("background") == "dark":
        flags.append("dark background (fluorescence?)")
    if row["tissue_share"] > FULL_MASK:
        flags.append(f"mask covers {100 * row['tissue_share']:.0f}% of the slide: check the background")
    if row["mpp_source"] not in ("slide", "none"):
        flags.append(f"MPP from the {row['mpp_source']}")
    if row["mpp_source"] == "sheet":
        mismatch = sheet_mpp_mismatch(row["mpp_x"], row.get("file_mpp"))
        if mismatch:
            flags.append(mismatch)
    return flags


def with_flags(rows: Sequence[Mapping[str, Any]], settings: QCSettings) -> pd.DataFrame:
    """The audit table (:data:`slidesnake.audit.AUDIT_TABLE`) of the slides' rows: each with its ``flags``
    (:func:`study_flags`, ``;``-joined) and whether it is ``excluded``."""
    rows = [dict(row) for row in rows]
    for row, flags in zip(rows, study_flags(rows, settings), strict=True):
        row["flags"] = ";".join(flags)
        row["excluded"] = row["status"] == "excluded"
    return pd.DataFrame(rows)
