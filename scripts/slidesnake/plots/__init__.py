"""Figures: slides (heatmaps, class maps, QC thumbnails) and evaluation (ROC, confusion, curves, t-SNE)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from ..io import atomic_path  # noqa: E402

#: JPEG quality of figures saved as ``.jpg`` (heatmaps, class maps: a set size for large reports).
JPEG_QUALITY = 82


def save(fig: plt.Figure, path: str, dpi: int = 110) -> None:
    """Save a figure atomically, as PNG or (for a ``.jpg`` path) JPEG, and close it."""
    jpeg = str(path).lower().endswith((".jpg", ".jpeg"))
    with atomic_path(path) as tmp:
        if jpeg:
            fig.savefig(tmp, format="jpeg", dpi=dpi, pil_kwargs={"quality": JPEG_QUALITY})
        else:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
