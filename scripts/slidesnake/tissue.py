"""Tissue detection at low resolution and the tile grid with each tile's tissue fraction."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage
from skimage import color, filters, morphology

from .settings import TissueSettings
from .tables import StoredTable
from .wsi.resolution import TilePlan

Background = Literal["bright", "dark"]

#: HSV value (0-1) under which a slide's border is dark: a fluorescence slide, tissue brighter than glass.
DARK_BORDER = 0.35


def background_of(rgb: np.ndarray) -> Background:
    """Whether a slide's background is bright (brightfield, H&E) or dark (fluorescence).

    The median brightness (HSV value) of the image's outer frame (5% of each side) decides:
    below :data:`DARK_BORDER` it is ``dark``.

    Parameters
    ----------
    rgb : numpy.ndarray
        (row, column, 3) uint8 overview of the whole slide.

    Returns
    -------
    {'bright', 'dark'}
    """
    _, value = saturation_value(rgb)
    rows, cols = value.shape
    dy, dx = max(1, rows // 20), max(1, cols // 20)
    frame = np.concatenate(
        [value[:dy].ravel(), value[-dy:].ravel(), value[:, :dx].ravel(), value[:, -dx:].ravel()]
    )
    return "dark" if float(np.median(frame)) < DARK_BORDER else "bright"


def tissue_mask(rgb: np.ndarray, settings: TissueSettings, background: Background = "bright") -> np.ndarray:
    """Find tissue in a low-resolution RGB image of a slide.

    On a bright background (brightfield) a pixel is tissue when its saturation is above
    Otsu's threshold (and at least ``min_saturation``) and its brightness is below
    ``max_brightness``. On a dark background (fluorescence) a pixel is tissue when its
    brightness is above Otsu's threshold of brightness (and at least ``min_saturation``).
    The mask is then closed (radius ``closing_um``), its holes filled and pieces smaller
    than ``min_object_um2`` removed.

    Parameters
    ----------
    rgb : numpy.ndarray
        (row, column, 3) uint8 image of the whole slide at ``settings.mask_mpp``.
    settings : TissueSettings
        The thresholds and sizes.
    background : {'bright', 'dark'}
        The slide's background (see :func:`background_of`).

    Returns
    -------
    numpy.ndarray
        (row, column) bool mask.
    """
    mpp = settings.mask_mpp
    saturation, value = saturation_value(rgb)
    if background == "dark":
        mask = value > _otsu(value, settings.min_saturation)
    else:
        mask = (saturation > _otsu(saturation, settings.min_saturation)) & (value < settings.max_brightness)
    radius = max(1, round(settings.closing_um / mpp))
    padded = np.pad(mask, radius, mode="reflect")  # so the closing does not eat tissue at the border
    mask = ndimage.binary_closing(padded, morphology.disk(radius))[radius:-radius, radius:-radius]
    mask = ndimage.binary_fill_holes(mask)
    min_pixels = max(1, round(settings.min_object_um2 / mpp**2))
    return morphology.remove_small_objects(mask, max_size=min_pixels)


#: Marker inks H&E never shows, as HSV hue ranges (0-1) with a least saturation: green to cyan, and a
#: saturated blue (hematoxylin is bluish, but never this saturated at the mask's resolution).
INK_HUES = ((0.2, 0.5, 0.25), (0.55, 0.66, 0.6))


def ink_mask(rgb: np.ndarray, settings: TissueSettings) -> np.ndarray:
    """Pen and marker ink in a low-resolution RGB image of a brightfield slide.

    A pixel is ink when its hue lies in one of :data:`INK_HUES` with at least that range's
    saturation; specks (one pixel) are dropped, and the ink is widened by ``closing_um`` so that
    its faint edges go with it.

    Parameters
    ----------
    rgb : numpy.ndarray
        (row, column, 3) uint8 image of the whole slide at ``settings.mask_mpp``.
    settings : TissueSettings
        Its ``mask_mpp`` and ``closing_um``.

    Returns
    -------
    numpy.ndarray
        (row, column) bool mask of ink.
    """
    hsv = color.rgb2hsv(rgb)
    hue, saturation = hsv[..., 0], hsv[..., 1]
    ink = np.zeros(rgb.shape[:2], bool)
    for low, high, least in INK_HUES:
        ink |= (hue >= low) & (hue < high) & (saturation >= least)
    ink = ndimage.binary_opening(ink)
    if not ink.any():
        return ink
    widen = max(1, round(settings.closing_um / settings.mask_mpp))
    return ndimage.binary_dilation(ink, morphology.disk(widen))


#: A tissue pixel is dense (a fold, a thick section) when both its hematoxylin and its eosin exceed this
#: many times the slide's median tissue pixel's (colour deconvolution, smoothed over DENSE_SMOOTH pixels).
DENSE_RATIO = 1.6
DENSE_SMOOTH = 5


def dense_mask(rgb: np.ndarray, tissue: np.ndarray) -> np.ndarray:
    """Tissue dark in both stains: where a section lies folded on itself (or is much thicker).

    Nuclei-rich tissue is dark in hematoxylin only, dense collagen in eosin only; a fold doubles
    both. Each stain's density (``skimage.color.rgb2hed``, averaged over :data:`DENSE_SMOOTH`
    pixels) is compared with its median over the tissue; pixels above :data:`DENSE_RATIO` times
    both medians, after an opening that drops specks, are dense.

    Parameters
    ----------
    rgb : numpy.ndarray
        (row, column, 3) uint8 low-resolution image of the slide.
    tissue : numpy.ndarray
        (row, column) bool tissue mask of the same image.

    Returns
    -------
    numpy.ndarray
        (row, column) bool mask, inside `tissue`.
    """
    if not tissue.any():
        return np.zeros_like(tissue)
    hed = color.rgb2hed(rgb)
    dense = tissue.copy()
    for channel in (0, 1):  # hematoxylin, eosin
        stain = ndimage.uniform_filter(hed[..., channel], DENSE_SMOOTH)
        dense &= stain > DENSE_RATIO * np.median(stain[tissue])
    return ndimage.binary_opening(dense)


def _otsu(channel: np.ndarray, floor: float) -> float:
    """Otsu's threshold of a 0-1 channel, never below ``floor`` (a flat channel: ``floor``)."""
    if channel.max() > channel.min():
        return max(float(filters.threshold_otsu(channel)), floor)
    return floor


def saturation_value(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HSV saturation and value (0-1, float32) of a uint8 RGB image, as ``skimage.color.rgb2hsv`` gives them.

    Parameters
    ----------
    rgb : numpy.ndarray
        (row, column, 3) uint8 image.

    Returns
    -------
    tuple of numpy.ndarray
        (row, column) saturation and value.
    """
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    high = np.maximum(np.maximum(red, green), blue)
    low = np.minimum(np.minimum(red, green), blue)
    saturation = (high - low) / np.maximum(high, 1).astype(np.float32)  # 0 where black
    return saturation, high * np.float32(1 / 255)


#: Columns of :func:`tile_grid`.
GRID_COLUMNS = ("row", "col", "y", "x", "x0", "y0", "tissue_fraction")
#: A slide folder's ``tile_grid.tsv`` (rule ``ingest``): the grid (:data:`GRID_COLUMNS`) and whether each
#: tile is kept (tissue fraction at least ``tissue: min_tissue_fraction``).
GRID_TABLE = StoredTable(
    paths=("results/slides/{slide}/tile_grid.tsv",),
    columns={**dict.fromkeys(GRID_COLUMNS, "number"), "keep": "bool"},
)


def tile_grid(plan: TilePlan, mask: np.ndarray, mask_mpp: float) -> pd.DataFrame:
    """List every whole tile of the target-resolution grid with its tissue fraction.

    Only tiles that lie entirely inside the slide are listed; the partial strip
    at the right and bottom edges is never tiled.

    Parameters
    ----------
    plan : TilePlan
        How the slide is tiled (tile size, target size, scale).
    mask : numpy.ndarray
        Tissue mask of the whole slide at ``mask_mpp``.
    mask_mpp : float
        Microns per pixel of ``mask``.

    Returns
    -------
    pandas.DataFrame
        One row per tile: ``row``, ``col`` (grid position), ``y``, ``x`` (top-left
        corner in target pixels), ``x0``, ``y0`` (top-left corner in level-0
        pixels) and ``tissue_fraction``.
    """
    tile_size = plan.tile_size
    rows, cols = plan.grid_shape
    if rows == 0 or cols == 0:
        return pd.DataFrame(columns=list(GRID_COLUMNS))
    mask_px_per_target = plan.tile_mpp / mask_mpp
    box = (0.0, 0.0, cols * tile_size * mask_px_per_target, rows * tile_size * mask_px_per_target)
    fraction_image = Image.fromarray(mask.astype(np.float32)).resize(
        (cols, rows), Image.Resampling.BOX, box=box
    )
    fraction = np.clip(np.asarray(fraction_image), 0.0, 1.0)
    grid_row, grid_col = np.mgrid[0:rows, 0:cols]
    grid = pd.DataFrame({"row": grid_row.ravel(), "col": grid_col.ravel()})
    grid["y"] = grid["row"] * tile_size
    grid["x"] = grid["col"] * tile_size
    grid["x0"] = np.round(grid["x"] * plan.level0_per_target).astype(int)
    grid["y0"] = np.round(grid["y"] * plan.level0_per_target).astype(int)
    grid["tissue_fraction"] = fraction.ravel().round(4)
    return grid


#: Luminance weights of skimage's ``rgb2gray``, scaled for uint8 input.
_GREY = np.array([0.2125, 0.7154, 0.0721], np.float32) / 255


#: Microns per pixel the blur score is measured at (see :func:`sharpness`).
BLUR_MPP = 1.0


def sharpness(tiles: np.ndarray, *, tile_mpp: float) -> np.ndarray:
    """Blur score: variance of the Laplacian of each tile's grey levels at :data:`BLUR_MPP` (x 1e4).

    Higher is sharper. Tiles finer than :data:`BLUR_MPP` are first averaged over square blocks of
    ``round(BLUR_MPP / tile_mpp)`` pixels, so that the score measures the same physical detail at every
    tile resolution (at the tiles' own resolution it halves from a 0.25 to a 0.5 um/px scan).

    Parameters
    ----------
    tiles : numpy.ndarray
        (..., row, column, 3) uint8: one tile or a stack of tiles (a stack is
        much faster per tile than one call per tile).
    tile_mpp : float
        Microns per pixel of the tiles.

    Returns
    -------
    numpy.ndarray
        float32 of shape ``tiles.shape[:-3]`` (a 0-d array for one tile): the
        variance of the 4-neighbour Laplacian of ``skimage.color.rgb2gray`` over
        each tile's interior pixels, times 1e4.
    """
    grey = tiles.astype(np.float32) @ _GREY
    block = max(1, round(BLUR_MPP / tile_mpp))
    if block > 1:
        side = (min(grey.shape[-2:]) // block) * block
        grey = grey[..., :side, :side]
        grey = grey.reshape(*grey.shape[:-2], side // block, block, side // block, block).mean(axis=(-3, -1))
    laplace = (
        4 * grey[..., 1:-1, 1:-1]
        - grey[..., :-2, 1:-1]
        - grey[..., 2:, 1:-1]
        - grey[..., 1:-1, :-2]
        - grey[..., 1:-1, 2:]
    )
    return laplace.var(axis=(-2, -1)) * np.float32(1e4)
