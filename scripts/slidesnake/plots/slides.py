"""Figures of one slide: the probability heatmap, the class map, the MIL attention map and the QC thumbnail.

Heatmaps and class maps are JPEG at a set size (1100 px wide), so a report of a thousand slides
stays a manageable size; coordinates are millimetres from the slide's top-left corner.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar
from PIL import Image, ImageDraw
from skimage.segmentation import find_boundaries

from ..exports.colours import class_colours
from . import save

#: Figure width in inches at :data:`DPI`: 1100 px.
WIDTH_IN, DPI = 11.0, 100
#: Probabilities below this are fully transparent on the heatmap, so the tissue shows through.
CLEAR_BELOW = 0.1
#: Opacity of probability 1: the tissue stays visible under the highest probabilities too.
OPAQUE = 0.65
#: Room right of the last panel, in inches: for the heatmap's colour bar, for the class map's legend.
COLOUR_BAR_IN, LEGEND_IN = 0.95, 2.1
#: Colour of the annotation outlines (against the yellow-red map and pink-purple H&E).
OUTLINE = "#0046ff"


@dataclass(frozen=True)
class SlideView:
    """What a slide figure shows under its map.

    Attributes
    ----------
    thumbnail : numpy.ndarray
        (row, column, 3) image of the whole slide.
    width_um, height_um : float
        The slide's extent (the thumbnail covers it).
    map_pixel_um : float
        Side of a map cell in microns.
    outlines : tuple of numpy.ndarray
        Annotation rings of the positive class, (point, 2) x/y in microns.
    """

    thumbnail: np.ndarray
    width_um: float
    height_um: float
    map_pixel_um: float
    outlines: tuple[np.ndarray, ...] = ()

    def extent(self) -> tuple[float, float, float, float]:
        """Matplotlib extent of the slide, in mm."""
        return (0, self.width_um / 1000, self.height_um / 1000, 0)

    def map_extent(self, shape: tuple[int, ...]) -> tuple[float, float, float, float]:
        """Matplotlib extent of a map of ``shape`` cells, in mm."""
        return (0, shape[1] * self.map_pixel_um / 1000, shape[0] * self.map_pixel_um / 1000, 0)


def figure_thumbnail(image: Image.Image) -> np.ndarray:
    """A slide thumbnail shrunk to the figures' width (:data:`WIDTH_IN` x :data:`DPI` pixels) at most.

    Matplotlib would resample a larger image down to its panel at every draw, which costs more
    than the rest of a figure.
    """
    side = round(WIDTH_IN * DPI)
    small = image.convert("RGB")
    small.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(small)


def _scale_bar(ax: plt.Axes, width_mm: float) -> None:
    """A scale bar of a round length about a fifth of the slide's width."""
    length = max(
        v for v in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20) if v <= max(width_mm / 5, 0.01)
    )
    label = f"{length * 1000:g} um" if length < 1 else f"{length:g} mm"
    bar = AnchoredSizeBar(
        ax.transData, length, label, "lower right", pad=0.4, color="black", frameon=True, size_vertical=0
    )
    ax.add_artist(bar)


def _frame(ax: plt.Axes, view: SlideView, title: str) -> None:
    extent = view.extent()
    ax.imshow(view.thumbnail, extent=extent)
    for ring in view.outlines:
        ax.plot(ring[:, 0] / 1000, ring[:, 1] / 1000, color=OUTLINE, lw=1.2)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("x (mm)")
    ax.set_title(title, fontsize=10)
    _scale_bar(ax, extent[1])


#: Fixed margins in inches (left, bottom, top, between panels): room for tick labels, axis labels,
#: the panel titles and the figure's title, without a layout engine's extra draws (half a figure's cost).
MARGIN_IN = {"left": 0.65, "bottom": 0.55, "top": 0.8, "between": 0.5}


def _figure(view: SlideView, panels: int, *, right_in: float) -> tuple[plt.Figure, np.ndarray]:
    """A figure of ``panels`` equal slide panels side by side, ``right_in`` inches kept free on the right."""
    panel_in = (WIDTH_IN - MARGIN_IN["left"] - right_in - (panels - 1) * MARGIN_IN["between"]) / panels
    aspect = view.height_um / max(view.width_um, 1)
    height = min(9.0, max(3.2, panel_in * aspect + MARGIN_IN["bottom"] + MARGIN_IN["top"]))
    fig, axes = plt.subplots(1, panels, figsize=(WIDTH_IN, height), dpi=DPI, squeeze=False)
    fig.subplots_adjust(
        left=MARGIN_IN["left"] / WIDTH_IN,
        right=1 - right_in / WIDTH_IN,
        bottom=MARGIN_IN["bottom"] / height,
        top=1 - MARGIN_IN["top"] / height,
        wspace=MARGIN_IN["between"] / panel_in,
    )
    return fig, axes[0]


def _colour_bar(fig: plt.Figure, ax: plt.Axes, shown: plt.cm.ScalarMappable, label: str) -> None:
    """A colour bar beside the image of ``ax`` (placed after its aspect is applied), 80% of its height."""
    ax.apply_aspect()
    box = ax.get_position()
    pad, width = 0.12 / WIDTH_IN, 0.16 / WIDTH_IN
    bar = fig.add_axes((box.x1 + pad, box.y0 + 0.1 * box.height, width, 0.8 * box.height))
    fig.colorbar(shown, cax=bar, label=label)


def heatmap_figure(view: SlideView, grid: np.ndarray, *, positive_class: str, title: str, path: str) -> None:
    """The slide beside its positive-class probability map, low probabilities transparent.

    Parameters
    ----------
    view : SlideView
        Thumbnail, extent and annotation outlines (drawn on both panels).
    grid : numpy.ndarray
        (row, column) probabilities, NaN where there is no tissue tile.
    positive_class : str
        The class of the map, for the colour bar.
    title, path : str
        Figure title (slide, split, score) and the JPEG to write.
    """
    fig, axes = _figure(view, 2, right_in=COLOUR_BAR_IN)
    _frame(axes[0], view, "slide" + (" with annotations" if view.outlines else ""))
    _frame(axes[1], view, f"P({positive_class})")
    axes[0].set_ylabel("y (mm)")
    colour = colormaps["YlOrRd"]
    probability = np.nan_to_num(grid, nan=0.0)
    rgba = colour(probability)
    rgba[..., 3] = np.where(
        np.isfinite(grid), np.clip((probability - CLEAR_BELOW) / (1 - CLEAR_BELOW), 0, 1) * OPAQUE, 0
    )
    axes[1].imshow(rgba, extent=view.map_extent(grid.shape), interpolation="nearest")
    shown = plt.cm.ScalarMappable(cmap=colour, norm=plt.Normalize(0, 1))
    _colour_bar(fig, axes[1], shown, f"P({positive_class}); clear below {CLEAR_BELOW}")
    fig.suptitle(title)
    save(fig, path, dpi=DPI)


def attention_figure(view: SlideView, grid: np.ndarray, *, title: str, path: str) -> None:
    """The slide beside its MIL attention, as within-slide percentiles (0-100), labelled as attention.

    Parameters
    ----------
    view : SlideView
        Thumbnail, extent and annotation outlines (drawn on both panels).
    grid : numpy.ndarray
        (row, column) attention percentiles, NaN where there is no tile.
    title, path : str
        Figure title and the JPEG to write.
    """
    fig, axes = _figure(view, 2, right_in=COLOUR_BAR_IN)
    _frame(axes[0], view, "slide" + (" with annotations" if view.outlines else ""))
    _frame(axes[1], view, "attention (not a probability)")
    axes[0].set_ylabel("y (mm)")
    colour = colormaps["viridis"]
    rgba = colour(np.nan_to_num(grid, nan=0.0) / 100)
    rgba[..., 3] = np.where(np.isfinite(grid), OPAQUE, 0)
    axes[1].imshow(rgba, extent=view.map_extent(grid.shape), interpolation="nearest")
    shown = plt.cm.ScalarMappable(cmap=colour, norm=plt.Normalize(0, 100))
    _colour_bar(fig, axes[1], shown, "attention: percentile within the slide")
    fig.suptitle(title)
    save(fig, path, dpi=DPI)


def excluded_figure(thumbnail: np.ndarray, *, title: str, reason: str, path: str) -> None:
    """The stand-in heatmap of an excluded slide: its thumbnail (if any) and why it has no map.

    Parameters
    ----------
    thumbnail : numpy.ndarray
        (row, column, 3) uint8 overview (a grey placeholder when the slide could not be read).
    title, reason : str
        The slide and why it is excluded.
    path : str
        The JPEG to write.
    """
    fig, ax = plt.subplots(figsize=(WIDTH_IN / 2, 3.2), dpi=DPI, layout="constrained")
    ax.imshow(thumbnail)
    ax.set_axis_off()
    ax.set_title("\n".join(textwrap.wrap(reason, 60)), fontsize=8)
    fig.suptitle(title)
    save(fig, path, dpi=DPI)


def class_map_figure(
    view: SlideView, grid: np.ndarray, *, classes: Sequence[str], title: str, path: str
) -> None:
    """The most probable class of every map cell over the slide, one fixed colour per class.

    Parameters
    ----------
    view : SlideView
        Thumbnail, extent and annotation outlines.
    grid : numpy.ndarray
        (row, column, class) probabilities, NaN where there is no tissue tile.
    classes : sequence of str
        Class names, in the map's channel order.
    title, path : str
        Figure title and the JPEG to write.
    """
    colours = class_colours(classes)
    rgb = [tuple(v / 255 for v in colours[c]) for c in classes]
    tissue = np.isfinite(grid[..., 0])
    best = np.where(tissue, np.nan_to_num(grid, nan=-1.0).argmax(axis=-1), -1)
    fig, axes = _figure(view, 1, right_in=LEGEND_IN)
    _frame(axes[0], view, "most probable class")
    axes[0].set_ylabel("y (mm)")
    axes[0].imshow(
        np.ma.masked_less(best, 0),
        extent=view.map_extent(grid.shape),
        cmap=ListedColormap(rgb),
        vmin=-0.5,
        vmax=len(classes) - 0.5,
        alpha=0.6,
        interpolation="nearest",
    )
    counts = {c: int((best == k).sum()) for k, c in enumerate(classes)}
    handles = [Patch(color=rgb[k], label=f"{c} ({counts[c]})") for k, c in enumerate(classes)]
    axes[0].legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title="class (cells)"
    )
    fig.suptitle(title)
    save(fig, path, dpi=DPI)


def qc_thumbnail(thumbnail: np.ndarray, mask: np.ndarray, *, side: int = 240) -> Image.Image:
    """A small thumbnail with the tissue mask's outline in green, at most ``side`` pixels a side."""
    image = Image.fromarray(thumbnail)
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    small = Image.fromarray(mask.astype(np.uint8) * 255).resize(image.size, Image.Resampling.NEAREST)
    outline = find_boundaries(np.asarray(small) > 127, mode="thick")
    pixels = np.asarray(image.convert("RGB")).copy()
    pixels[outline] = (0, 170, 0)
    image = Image.fromarray(pixels)
    if not mask.any():
        ImageDraw.Draw(image).text((4, 4), "no tissue", fill=(200, 0, 0))
    return image
