"""One fixed colour per class, shared by the class maps, QuPath exports and legends."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib import colormaps


def class_colours(classes: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """RGB 0-255 of each class, by its position in the model's classes (tab10, or tab20 past ten)."""
    palette = colormaps["tab10" if len(classes) <= 10 else "tab20"].colors
    return {
        name: tuple(round(255 * v) for v in palette[k % len(palette)][:3]) for k, name in enumerate(classes)
    }
