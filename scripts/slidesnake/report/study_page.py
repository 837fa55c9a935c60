"""The study's pages: the summary (a headline first, then what was excluded or flagged, cross-site and
regimes tables, and the details), the QC page of every slide, and the provenance page."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ..intervals import interval_text
from .html import heading, jpeg_tag, metric_warnings, paragraph, qc_cells, table, with_intervals

#: Held-out splits: a dataset's test patients, a cohort's external slides.
HELD_OUT = ("test", "external", "oof")
#: How the headline names a split.
SPLIT_WORDS = {"oof": "out of fold"}
#: What the headline says under its table.
HEADLINE_NOTE = (
    "One row per model and held-out set: patients the model never trained on (a dataset's test split) "
    "or another dataset's slides (a cohort). Tile AUC: the positive class against the rest by tile (or "
    "image), with its patient-bootstrap 95% CI; slide sensitivity and specificity at the prediction "
    "threshold with exact (Clopper-Pearson) 95% CIs; 'not estimable' says why there is no interval. "
    "Each dataset's page has every level and metric."
)
#: The columns of the cross-site table the summary shows (the TSV has them all).
CROSS_SITE_SHOWN = (
    "model",
    "cohort",
    "stain",
    "patients",
    "auc",
    "in_site_auc",
    "balanced_accuracy",
    "in_site_balanced_accuracy",
    "note",
)
#: Stain settings, under the cross-site table.
STAIN_NOTE = (
    "Tile-level AUC and balanced accuracy with patient-bootstrap 95% CIs (or not estimable, see note). "
    "Stain 'none': no normalization and no stain augmentation; 'macenko'/'reinhard': normalization to a "
    "target fitted on the model's training split, inside the saved model; 'hed': stain augmentation in "
    "HED space during training. The figure marks each model's own (in-site) test AUC as its reference."
)


def _cell(rows: pd.DataFrame, metric: str, absent: str = "n/a") -> str:
    if rows.empty or metric not in rows:
        return absent
    row = rows.iloc[0]
    text = interval_text(
        row[metric], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"], row[f"{metric}_ci_method"]
    )
    if text == "n/a":  # undefined: the row's note says why
        note = row.get("note")
        why = [
            part for part in str(note if isinstance(note, str) else "").split("; ") if metric in part.lower()
        ]
        text = f"n/a: {why[0].split(' not estimable: ')[-1]}" if why else text
    return text


def model_names(cohorts: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Held-out set -> the name of the model that predicted it: a variant is named as one, with its stain."""
    names = {}
    for row in cohorts:
        model = str(row["model"])
        if model.endswith(" (variant)"):
            model = f"{model.removesuffix(' (variant)')}, variant (stain {row['stain']})"
        names[str(row["cohort"])] = model
    return names


def headline(performance: pd.DataFrame, cohorts: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per model and held-out set: patients, tile AUC, slide sensitivity and specificity with their
    intervals, and the cautions a reader must see beside them.

    Parameters
    ----------
    performance : pandas.DataFrame
        ``results/reports/performance.tsv``.
    cohorts : sequence of Mapping
        The study's cohorts (``cohort``, ``model``, ``stain``), to name variant models.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``held-out set``, ``patients``, ``slides``, ``tile AUC``, ``slide AUC``,
        ``slide sensitivity``, ``slide specificity``, ``caution``.
    """
    names = model_names(cohorts)
    held = performance[performance["split"].isin(HELD_OUT)]
    rows = []
    for (model, evaluated_on), part in held.groupby(["model", "evaluated_on"], sort=False):
        tiles = part[part["level"].isin(["tile", "image"])]
        slides = part[part["level"] == "slide"]
        split = str(part["split"].iloc[0])
        patients = int(part["patients"].max())
        cautions = []
        if patients < 3:
            cautions.append(f"{patients} patient(s): says little about other patients")
        auc = tiles["auc"].iloc[0] if len(tiles) else np.nan
        if auc == 1.0 and patients < 10:
            cautions.append(f"AUC 1.00 on {patients} patient(s): too few to trust")
        rows.append(
            {
                "model": names.get(str(evaluated_on), str(model)),
                "held-out set": f"{evaluated_on} ({SPLIT_WORDS.get(split, split)})",
                "patients": patients,
                "slides": int(slides["n"].iloc[0]) if len(slides) else int(part["items"].max()),
                "tile AUC": _cell(tiles, "auc", "n/a: a slide-level model" if split == "oof" else "n/a"),
                "slide AUC": _cell(slides, "auc"),
                "slide sensitivity": _cell(slides, "sensitivity"),
                "slide specificity": _cell(slides, "specificity"),
                "caution": "; ".join(cautions),
            }
        )
    return pd.DataFrame(rows)


def qc_summary(audit: pd.DataFrame) -> str:
    """One line: how many slides, how many flagged and excluded (and the flags' kinds)."""
    if audit.empty:
        return "No slides in this study (patch-folder datasets only)."
    flagged = audit[(audit["flags"] != "") & (audit["status"] != "excluded")]
    excluded = audit[audit["status"] == "excluded"]
    line = f"{len(audit)} slides: {len(flagged)} flagged, {len(excluded)} excluded"
    if len(flagged):
        line += (
            " ("
            + ", ".join(f"{s}: {f}" for s, f in zip(flagged["slide_id"], flagged["flags"], strict=True))
            + ")"
        )
    return line + "."


def summary_sections(
    *,
    audit: pd.DataFrame,
    performance: pd.DataFrame,
    cross_site: Sequence[tuple[pd.DataFrame, Image.Image]],
    regimes: Sequence[pd.DataFrame],
    datasets: Sequence[Mapping[str, Any]],
    cohorts: Sequence[Mapping[str, Any]],
    homes: Mapping[str, str],
) -> list[str]:
    """The study summary: the headline, QC in a line, excluded slides, cross-site, regimes, then details."""
    sections = [
        heading("How good is each model, on how many patients"),
        table(headline(performance, cohorts)),
        paragraph(HEADLINE_NOTE, "note"),
        heading("Slides"),
        paragraph(
            qc_summary(audit) + " Every slide's thumbnail, mask and numbers: the quality-control page.",
            "warning" if len(audit) and (audit["flags"] != "").any() else "",
        ),
    ]
    excluded = audit[audit["status"] == "excluded"] if len(audit) else audit
    if len(excluded):
        sections += [
            paragraph(
                "Excluded slides are carried through with empty outputs and left out of every split, model "
                "and metric (config on_bad_slide: skip). Fix the file or the setting named, and rerun.",
                "warning",
            ),
            table(
                excluded.assign(dataset=excluded["slide_id"].map(homes))[
                    ["slide_id", "dataset", "path", "reason"]
                ]
            ),
        ]
    for frame, figure in cross_site:
        sections += [
            heading("Cross-site: each model at a site it never saw, by stain setting"),
            table(with_intervals(frame[[c for c in frame if c in CROSS_SITE_SHOWN or "_ci_" in c]])),
            paragraph(STAIN_NOTE, "note"),
            jpeg_tag(figure, "cross-site AUC by stain setting, in-site reference marked"),
        ]
    for frame in regimes:
        sections += [
            heading("Transfer-learning regimes: one dataset trained several ways, on its test split"),
            table(with_intervals(frame)),
            paragraph(
                "Regime 'model' is the dataset's own model; the others are config datasets: <name>: regimes, "
                "each trained on the same train split. Tile-level AUC and balanced accuracy with "
                "patient-bootstrap 95% CIs; training time in seconds on this machine.",
                "note",
            ),
        ]
    sections += [heading("Details: datasets (one model each)"), table(pd.DataFrame(datasets))]
    if cohorts:
        sections += [
            heading("Cohorts (slides predicted with another dataset's model)"),
            table(pd.DataFrame(cohorts)),
        ]
    detail = performance[performance["level"].isin(["slide", "patient", "image", "tile"])]
    sections += [heading("Details: every model on every set, every level")]
    sections += [
        paragraph(t, "note") for t in metric_warnings(performance.rename(columns={"evaluated_on": "dataset"}))
    ]
    sections += [table(with_intervals(detail.drop(columns=["validation", "unit"], errors="ignore")))]
    return sections


def qc_sections(audit: pd.DataFrame, images: Sequence[Image.Image], homes: Mapping[str, str]) -> list[str]:
    """The QC page: the summary line, flagged slides, every slide's thumbnail with its mask, all numbers."""
    if audit.empty:
        return [paragraph(qc_summary(audit))]
    readers = audit["reader"].value_counts().to_dict()
    sections = [
        paragraph(qc_summary(audit)),
        paragraph(
            "Read with "
            + ", ".join(f"{n} by {reader}" for reader, n in readers.items())
            + " (tifffile: the fast path decoding the file's tiles directly; openslide otherwise).",
            "note",
        ),
    ]
    flagged = audit[audit["flags"] != ""]
    if len(flagged):
        sections += [
            heading("Flagged and excluded slides"),
            table(flagged[["slide_id", "flags", "excluded"]]),
        ]
    sections += [
        paragraph("Green: the tissue mask's outline. Red frame: excluded from the study.", "note"),
        qc_cells(audit.assign(dataset=audit["slide_id"].map(homes)), images),
        heading("All numbers"),
        table(audit),
    ]
    return sections


def provenance_sections(provenance: Mapping[str, Any]) -> list[str]:
    """The provenance page: the run's facts, the packages, the config as used."""
    packages = pd.DataFrame(sorted(provenance["packages"].items()), columns=["package", "version"])
    facts = {k: v for k, v in provenance.items() if k not in ("packages", "config")}
    return [
        heading("Run"),
        table(pd.DataFrame([{"key": k, "value": json.dumps(v)} for k, v in facts.items()])),
        heading("Packages"),
        table(packages),
        heading("Config as used"),
        f"<pre>{html.escape(json.dumps(provenance['config'], indent=2))}</pre>",
    ]
