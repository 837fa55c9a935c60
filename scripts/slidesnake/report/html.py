"""HTML pages for the study report: numbers as tables the report shows inline, and the QC cohort page.

Snakemake's report shows HTML outputs inline (in a frame), so every table a reader needs is an HTML
page here: self-contained (styles inline, thumbnails as embedded JPEG), escaped, no scripts.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from ..intervals import interval_text, method_summary
from ..metrics import METRICS

STYLE = """
body { font-family: Helvetica, Arial, sans-serif; font-size: 14px; margin: 1.2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f2f2f2; } td.text, th.text { text-align: left; }
.warning { background: #fff4e5; border-left: 4px solid #f0a020; padding: 6px 10px; margin: 6px 0; }
.ok { color: #2a7a2a; } .bad { color: #b00020; font-weight: bold; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
.cell { width: 250px; border: 1px solid #ccc; padding: 5px; font-size: 12px; }
.cell.excluded { border: 2px solid #b00020; background: #fdecee; }
.cell img { width: 240px; display: block; margin-bottom: 4px; }
.note { color: #555; font-size: 12px; }
"""


def page(title: str, sections: Iterable[str], links: Mapping[str, str] | None = None) -> str:
    """A whole HTML document: a line of links to the other pages (text -> relative address), a title
    and its sections."""
    body = "\n".join(sections)
    nav = " | ".join(
        f"<a href='{html.escape(href)}'>{html.escape(text)}</a>" for text, href in (links or {}).items()
    )
    nav = f"<p class='note'>{nav}</p>\n" if nav else ""
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{nav}<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


#: Links of a dataset's or cohort's page (``results/reports/<name>/summary.html``) to the study's pages.
STUDY_LINKS = {
    "study summary": "../study.html",
    "quality control": "../qc.html",
    "provenance": "../provenance.html",
}


def heading(text: str) -> str:
    """A section heading."""
    return f"<h2>{html.escape(text)}</h2>"


def paragraph(text: str, kind: str = "") -> str:
    """A paragraph of escaped text (``kind``: ``warning`` or ``note`` for its style)."""
    cls = f" class='{kind}'" if kind else ""
    return f"<p{cls}>{html.escape(text)}</p>"


def _cell(value: object) -> tuple[str, str]:
    if isinstance(value, float | np.floating):
        text = "" if np.isnan(value) else f"{value:.4g}"
        return text, ""
    if isinstance(value, int | np.integer):
        return str(value), ""
    return html.escape(str(value)), " class='text'"


def table(frame: pd.DataFrame, *, caption: str = "", limit: int = 2000) -> str:
    """An HTML table of a data frame (numbers to 4 significant digits, text left-aligned, escaped)."""
    shown = frame.head(limit)
    head = "".join(
        f"<th{' class=text' if frame[c].dtype == object else ''}>{html.escape(str(c))}</th>" for c in frame
    )
    rows = []
    for values in shown.itertuples(index=False):
        cells = "".join(f"<td{cls}>{text}</td>" for text, cls in map(_cell, values))
        rows.append(f"<tr>{cells}</tr>")
    more = f"<p class='note'>first {limit} of {len(frame)} rows</p>" if len(frame) > limit else ""
    title = f"<caption class='note'>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{title}<tr>{head}</tr>{''.join(rows)}</table>{more}"


def with_intervals(metrics: pd.DataFrame) -> pd.DataFrame:
    """Metrics with each value and its 95% CI in one column, the interval methods in ``ci_method``.

    ``0.931 (0.902-0.955)``; ``0.993, not estimable (1 patient)`` where there is no interval (the
    ``note`` column says why); ``n/a`` where the metric is undefined (the note says why). The
    per-metric ``<metric>_ci_method`` columns are summed up in one ``ci_method`` column.
    """
    parts = [c for m in METRICS for c in (f"{m}_ci_low", f"{m}_ci_high", f"{m}_ci_method")]
    shown = metrics.drop(columns=parts, errors="ignore")
    for name in METRICS:
        if name not in metrics:
            continue
        methods = metrics.get(f"{name}_ci_method", pd.Series([""] * len(metrics), index=metrics.index))
        shown[name] = [
            interval_text(*values)
            for values in zip(
                metrics[name], metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"], methods, strict=True
            )
        ]
    if "ci_method" not in shown and any(f"{m}_ci_method" in metrics for m in METRICS):
        summary = [method_summary(row, METRICS) for row in metrics.to_dict("records")]
        shown.insert(len(shown.columns) - ("note" in shown), "ci_method", summary)
    if "note" in shown:
        shown["note"] = shown["note"].fillna("")
    return shown


def jpeg_tag(image: Image.Image, alt: str, quality: int = 80) -> str:
    """An ``<img>`` with the image embedded as JPEG."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality, optimize=True)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img alt='{html.escape(alt)}' src='data:image/jpeg;base64,{data}'>"


def metric_warnings(metrics: pd.DataFrame) -> list[str]:
    """Warnings a reader must see beside the numbers: held-out sets of too few patients, perfect scores."""
    found = []
    held_out = metrics[metrics["split"].isin(["test", "external"])]
    for row in held_out.drop_duplicates(["dataset", "split"]).itertuples():
        if row.patients < 3:
            found.append(
                f"{row.dataset}: the {row.split} set has {row.patients} patient(s); its metrics and "
                "intervals say little about other patients"
            )
    perfect = held_out[(held_out["auc"] == 1.0) & (held_out["patients"] < 10)]
    for row in perfect.drop_duplicates(["dataset", "split"]).itertuples():
        found.append(
            f"{row.dataset}: AUC 1.00 on the {row.split} set of {row.patients} patient(s): too few to trust"
        )
    return found


def qc_cells(rows: pd.DataFrame, thumbnails: Sequence[Image.Image]) -> str:
    """The QC cohort grid: one cell per slide with its outlined thumbnail, numbers and flags."""
    cells = []
    for row, image in zip(rows.itertuples(index=False), thumbnails, strict=True):
        flags = (
            list(row.flags)
            if isinstance(row.flags, list | tuple)
            else [f for f in str(row.flags).split(";") if f]
        )
        excluded = bool(row.excluded)
        lines = [
            f"<b>{html.escape(str(row.slide_id))}</b> ({html.escape(str(row.dataset))})",
            f"tiles kept {row.tiles_kept} of {row.tiles_total}",
            f"tissue {row.tissue_area_mm2:.2f} mm2, blur {row.blur_score} (1 um/px; higher: sharper)",
            f"{row.mpp_x:.3f} um/px ({html.escape(str(row.mpp_source))}), {html.escape(str(row.reader))}",
        ]
        if flags:
            lines.append("<span class='bad'>" + html.escape(", ".join(flags)) + "</span>")
        cls = "cell excluded" if excluded else "cell"
        cells.append(f"<div class='{cls}'>{jpeg_tag(image, str(row.slide_id))}{'<br>'.join(lines)}</div>")
    return f"<div class='grid'>{''.join(cells)}</div>"
