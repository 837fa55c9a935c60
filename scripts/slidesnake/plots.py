"""Figures for the reports: heatmaps over thumbnails, confusion matrix, ROC, training curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from collections.abc import Sequence  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay  # noqa: E402

from .io import atomic_path  # noqa: E402


def _save(fig: plt.Figure, path: str) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def heatmap_figure(
    thumbnail: np.ndarray,
    grid: np.ndarray,
    *,
    map_pixel_um: float,
    width_um: float,
    height_um: float,
    title: str,
    path: str,
) -> None:
    """Draw the thumbnail and the probability map over it, side by side, in microns.

    Parameters
    ----------
    thumbnail : numpy.ndarray
        (row, column, 3) image of the whole slide.
    grid : numpy.ndarray
        (row, column) probabilities, NaN where there is no tissue tile.
    map_pixel_um : float
        Side of one map pixel (one tile) in microns.
    width_um, height_um : float
        Extent of the slide in microns (the thumbnail covers this).
    title : str
        Figure title.
    path : str
        PNG to write.
    """
    extent = (0, width_um / 1000, height_um / 1000, 0)
    map_extent = (0, grid.shape[1] * map_pixel_um / 1000, grid.shape[0] * map_pixel_um / 1000, 0)
    aspect = height_um / max(width_um, 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, max(3.0, 5.2 * aspect)), constrained_layout=True)
    axes[0].imshow(thumbnail, extent=extent)
    axes[0].set_title("slide")
    axes[1].imshow(thumbnail, extent=extent)
    shown = axes[1].imshow(
        np.ma.masked_invalid(grid),
        extent=map_extent,
        cmap="coolwarm",
        vmin=0,
        vmax=1,
        alpha=0.55,
        interpolation="nearest",
    )
    axes[1].set_title("tumor probability")
    for ax in axes:
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_xlabel("x (mm)")
    axes[0].set_ylabel("y (mm)")
    fig.colorbar(shown, ax=axes[1], shrink=0.8, label="probability")
    fig.suptitle(title)
    _save(fig, path)


def class_map_figure(
    thumbnail: np.ndarray,
    grid: np.ndarray,
    *,
    classes: Sequence[str],
    map_pixel_um: float,
    width_um: float,
    height_um: float,
    title: str,
    path: str,
) -> None:
    """Draw the most probable class of every map cell over the thumbnail, one fixed colour per class.

    Parameters
    ----------
    thumbnail : numpy.ndarray
        (row, column, 3) image of the whole slide.
    grid : numpy.ndarray
        (row, column, class) probabilities, NaN where there is no tissue tile.
    classes : sequence of str
        Class names, in the map's channel order.
    map_pixel_um, width_um, height_um : float
        Side of a map cell and the slide's extent, in microns.
    title, path : str
        Figure title and the PNG to write.
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from .exports.colours import class_colours

    colours = class_colours(classes)
    rgb = [tuple(v / 255 for v in colours[c]) for c in classes]
    tissue = np.isfinite(grid[..., 0]) if grid.size else np.zeros(grid.shape[:2], bool)
    best = np.where(tissue, np.nan_to_num(grid, nan=-1.0).argmax(axis=-1), -1) if grid.size else grid[..., 0]
    extent = (0, width_um / 1000, height_um / 1000, 0)
    map_extent = (0, grid.shape[1] * map_pixel_um / 1000, grid.shape[0] * map_pixel_um / 1000, 0)
    aspect = height_um / max(width_um, 1)
    fig, ax = plt.subplots(figsize=(8, max(3.0, 6.0 * aspect)), constrained_layout=True)
    ax.imshow(thumbnail, extent=extent)
    ax.imshow(
        np.ma.masked_less(best, 0),
        extent=map_extent,
        cmap=ListedColormap(rgb),
        vmin=-0.5,
        vmax=len(classes) - 0.5,
        alpha=0.6,
        interpolation="nearest",
    )
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    counts = {c: int((best == k).sum()) for k, c in enumerate(classes)}
    handles = [Patch(color=rgb[k], label=f"{c} ({counts[c]})") for k, c in enumerate(classes)]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title="class (cells)")
    ax.set_title(title)
    _save(fig, path)


def confusion_figure(tiles: pd.DataFrame, classes: list[str], title: str, path: str) -> None:
    """Confusion matrix of labelled tiles (columns ``label`` and ``p_<class>``)."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    if len(tiles):
        predicted = np.asarray(classes)[tiles[[f"p_{c}" for c in classes]].to_numpy().argmax(axis=1)]
        ConfusionMatrixDisplay.from_predictions(
            tiles["label"], predicted, labels=classes, ax=ax, colorbar=False
        )
    else:
        ax.text(0.5, 0.5, "no labelled tiles", ha="center")
    ax.set_title(title)
    _save(fig, path)


def roc_figure(tiles: pd.DataFrame, classes: list[str], positive_class: str, title: str, path: str) -> None:
    """ROC curves of the positive class, one per split that has both classes."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    for split, part in tiles.groupby("split", sort=False):
        truth = part["label"] == positive_class
        if 0 < truth.sum() < len(truth):
            RocCurveDisplay.from_predictions(truth, part[f"p_{positive_class}"], name=str(split), ax=ax)
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set_title(title)
    _save(fig, path)


def training_curves_figure(history: pd.DataFrame, title: str, path: str) -> None:
    """Loss and accuracy per epoch, training and validation."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for column in (metric, f"val_{metric}"):
            if column in history:
                ax.plot(history["epoch"], history[column], marker="o", label=column)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.suptitle(title)
    _save(fig, path)


def embedding_figure(table: pd.DataFrame, title: str, path: str) -> None:
    """Scatter of a 2-D embedding (``tsne_1``, ``tsne_2``): colour by ``label``, marker by ``split``."""
    fig, ax = plt.subplots(figsize=(6, 5))
    markers = {"train": "o", "val": "s", "test": "^"}
    colours = dict(zip(sorted(table["label"].unique()), plt.cm.tab10.colors, strict=False))
    for (label, split), part in table.groupby(["label", "split"]):
        ax.scatter(
            part["tsne_1"],
            part["tsne_2"],
            s=12,
            alpha=0.7,
            c=[colours[label]],
            marker=markers.get(split, "o"),
            label=f"{label} ({split})",
        )
    ax.legend(fontsize=7, markerscale=1.5, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    _save(fig, path)
