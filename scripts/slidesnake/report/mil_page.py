"""The page of a MIL dataset (``results/reports/<dataset>/summary.html``): out-of-fold slide and patient
metrics of attention MIL and of the mean-pooling baseline with their CIs and seed spread, the ROC, attention
checked against annotations, and each slide's attention map and top and bottom tiles."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from PIL import Image

from .html import STUDY_LINKS, heading, jpeg_tag, page, paragraph, table, with_intervals

#: Columns of the metrics shown on the page (with intervals), in order.
SHOWN = [
    "pooling",
    "level",
    "split",
    "n",
    "patients",
    "auc",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
]


def _spread(metrics: pd.DataFrame) -> list[str]:
    lines = []
    for pooling, part in metrics.groupby("pooling", sort=False):
        row = part.iloc[0]
        if pd.notna(row["seed_auc_min"]):
            lines.append(
                f"{pooling} pooling: out-of-fold {row['level']} AUC of each seed's networks "
                f"{row['seed_auc_min']:.3f}-{row['seed_auc_max']:.3f} ({int(row['seeds'])} seeds); "
                "the table's AUC is that of their mean probability"
            )
    return lines


def mil_page(
    *,
    dataset: str,
    metrics: pd.DataFrame,
    attention_slides: pd.DataFrame,
    attention_summary: Mapping[str, object],
    evidence: Sequence[str],
    roc_png: str,
    maps: Mapping[str, tuple[str, str]],
    settings: Mapping[str, object],
) -> str:
    """The whole HTML page.

    Parameters
    ----------
    dataset : str
        The dataset.
    metrics : pandas.DataFrame
        :func:`slidesnake.mil.evaluation.mil_metrics`.
    attention_slides, attention_summary :
        :func:`slidesnake.mil.evaluation.attention_check` (an empty table: no annotations to check against).
    evidence : sequence of str
        The annotation classes attention is checked against.
    roc_png : str
        The ROC figure.
    maps : Mapping
        Slide id -> (its attention map JPEG, its montage JPEG), embedded shrunk.
    settings : Mapping
        The MIL settings (shown as a line).
    """
    sections = [
        paragraph(
            "Slide-level learning from the slides' labels: gated attention MIL (Ilse et al. 2018) and a "
            "mean-pooling baseline on the same tile features, each trained per fold of a patient-grouped "
            "cross-validation with several seeds; every patient is predicted once, out of fold. "
            + ", ".join(f"{k} {v}" for k, v in settings.items())
        ),
        heading("Out-of-fold metrics"),
        table(with_intervals(metrics)[[c for c in SHOWN if c in metrics] + ["note"]]),
        *[paragraph(line, "note") for line in _spread(metrics)],
        f"<img src='data:image/png;base64,{_png64(roc_png)}' alt='ROC'>",
        heading("Does attention look where the annotations are?"),
    ]
    if attention_slides.empty:
        sections.append(
            paragraph("No slide of this dataset has annotations of " + ", ".join(evidence), "note")
        )
    else:
        s = attention_summary
        interval = (
            f"{s['mean_auc']:.3f} ({s['ci_low']:.3f}-{s['ci_high']:.3f}, {s['note']})"
            if pd.notna(s["ci_low"])
            else f"{s['mean_auc']:.3f}, {s['note']}"
        )
        sections += [
            paragraph(
                f"AUC of attention for tiles inside the annotated {', '.join(evidence)} regions against the "
                f"rest of the slide, per slide of the positive class, mean over {s['slides']} slides: "
                f"{interval}. 0.5: attention ignores the annotated regions; 1: every annotated tile ranks "
                "above every other."
            ),
            table(attention_slides),
        ]
    sections.append(heading("Attention maps and the tiles at both ends of each slide's ranking"))
    for slide_id, (map_jpg, montage_jpg) in maps.items():
        sections.append(f"<h3>{slide_id}</h3>")
        for path in (map_jpg, montage_jpg):
            image = Image.open(path)
            image.thumbnail((1100, 1100))
            sections.append(jpeg_tag(image, f"{slide_id}: {Path(path).name}"))
    return page(f"{dataset}: slide-level learning (MIL)", sections, STUDY_LINKS)


def _png64(path: str) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")
