"""H&E stain normalization (Macenko, Reinhard) to a fitted target, and stain augmentation in HED space.

Arrays are uint8 RGB tiles, (row, column, channel). Optical density (OD) is ``-log10((I + 1) / 256)``
per channel, as in Macenko et al. (ISBI 2009); colour conversions are scikit-image's (``rgb2lab``,
``lab2rgb``, ``rgb2hed``, ``hed2rgb``).

- **Macenko**: the two stain vectors of a tile are the extreme angles (1st and 99th percentile) of
  its tissue pixels' OD in the plane of their two main directions; each pixel's stain concentrations
  are rescaled so that their 99th percentiles match the target's, then rebuilt with the target's
  stain vectors.
- **Reinhard** (2001): each tissue channel's mean and standard deviation in CIE Lab set to the target's.

Robustness: only tissue pixels (OD above :data:`OD_THRESHOLD` in every channel for Macenko, not
near-white for Reinhard) are fitted; a tile with fewer than :data:`MIN_TISSUE_PIXELS` of them (or
not background in :data:`MIN_TISSUE_SHARE` of its pixels), or whose fit is degenerate, is
returned unchanged; background fades from normalized to unchanged over a ramp (no hard mask
edge); outputs are clipped to 0-255, never NaN.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from skimage.color import hed2rgb, lab2rgb, rgb2hed, rgb2lab

from .errors import PatchError, StainError

StainMethod = Literal["macenko", "reinhard"]
#: Pixels whose optical density is below this in any channel are background (Macenko's beta).
OD_THRESHOLD = 0.15
#: Percentile of the extreme angles (Macenko's alpha).
ANGLE_PERCENTILE = 1.0
#: Percentile of the stain concentrations that is matched to the target's.
CONCENTRATION_PERCENTILE = 99.0
#: A tile with fewer tissue pixels than this is left as it is.
MIN_TISSUE_PIXELS = 64
#: ... and so is a tile whose tissue covers less than this share of it (nearly empty).
MIN_TISSUE_SHARE = 0.05
#: Lab lightness above which a pixel counts as background for Reinhard.
WHITE_LIGHTNESS = 90.0
#: Reinhard changes a tile's Lab spread at most this many times (a pale tile is not blown up).
MAX_SCALE = 2.0


@dataclass(frozen=True, kw_only=True)
class StainTarget:
    """What normalization maps tiles to, fitted on reference tissue.

    Attributes
    ----------
    method : {'macenko', 'reinhard'}
        The normalization.
    stains : tuple of tuple of float
        Macenko: the haematoxylin and eosin OD vectors (unit length, RGB order).
    max_concentrations : tuple of float
        Macenko: the 99th percentile of the H and E concentrations.
    lab_mean, lab_std : tuple of float
        Reinhard: mean and standard deviation of the tissue's L, a and b.
    """

    method: StainMethod
    stains: tuple[tuple[float, float, float], ...] = ()
    max_concentrations: tuple[float, ...] = ()
    lab_mean: tuple[float, ...] = ()
    lab_std: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        """A JSON-ready dict (what ``config.json`` beside a model records)."""
        return {
            "method": self.method,
            "stains": [list(v) for v in self.stains],
            "max_concentrations": list(self.max_concentrations),
            "lab_mean": list(self.lab_mean),
            "lab_std": list(self.lab_std),
        }

    @classmethod
    def from_dict(cls, values: dict) -> StainTarget:
        """The target :meth:`to_dict` wrote."""
        return cls(
            method=values["method"],
            stains=tuple(tuple(map(float, v)) for v in values["stains"]),
            max_concentrations=tuple(map(float, values["max_concentrations"])),
            lab_mean=tuple(map(float, values["lab_mean"])),
            lab_std=tuple(map(float, values["lab_std"])),
        )


def optical_density(pixels: np.ndarray) -> np.ndarray:
    """OD ``-log10((I + 1) / 256)`` of uint8 RGB values, shape kept (0 for white, ~2.4 for black)."""
    return -np.log10((pixels.astype(np.float64) + 1.0) / 256.0)


def _tissue_od(pixels: np.ndarray) -> np.ndarray:
    """(pixel, channel) OD of the tissue pixels of an (..., 3) RGB array."""
    od = optical_density(pixels.reshape(-1, 3))
    return od[(od > OD_THRESHOLD).all(axis=1)]


def macenko_stains(od: np.ndarray) -> np.ndarray | None:
    """The (2, 3) H and E unit OD vectors of tissue pixels' OD ``od`` (pixel, channel); None if degenerate."""
    if len(od) < MIN_TISSUE_PIXELS:
        return None
    _, vectors = np.linalg.eigh(np.cov(od, rowvar=False))
    plane = vectors[:, [2, 1]]  # the two largest directions
    plane *= np.where(plane[0] < 0, -1.0, 1.0)  # point both into positive OD, where stains lie
    projected = od @ plane
    angles = np.arctan2(projected[:, 1], projected[:, 0])
    low, high = np.percentile(angles, [ANGLE_PERCENTILE, 100 - ANGLE_PERCENTILE])
    first = plane @ np.array([np.cos(low), np.sin(low)])
    second = plane @ np.array([np.cos(high), np.sin(high)])
    stains = np.stack([first, second] if first[0] > second[0] else [second, first])  # H absorbs red most
    if not np.isfinite(stains).all() or (stains <= 0).all(axis=1).any():
        return None
    return stains / np.linalg.norm(stains, axis=1, keepdims=True)


def _concentrations(od: np.ndarray, stains: np.ndarray) -> np.ndarray:
    """(pixel, stain) least-squares concentrations of OD ``od`` in the basis ``stains``."""
    return np.linalg.lstsq(stains.T, od.T, rcond=None)[0].T


def fit_target(tiles: Iterable[np.ndarray], method: StainMethod) -> StainTarget:
    """Fit a normalization target on reference tiles (e.g. the training split's, or one image).

    Parameters
    ----------
    tiles : iterable of numpy.ndarray
        uint8 RGB arrays, (row, column, channel); their tissue pixels are pooled.
    method : {'macenko', 'reinhard'}
        The normalization the target is for.

    Returns
    -------
    StainTarget

    Raises
    ------
    StainError
        When the references hold too little tissue.
    """
    pixels = np.concatenate([np.asarray(t, np.uint8).reshape(-1, 3) for t in tiles])
    if method == "reinhard":
        lab = _tissue_lab(pixels)
        if lab is None:
            msg = f"stain reference: fewer than {MIN_TISSUE_PIXELS} tissue pixels to fit 'reinhard' on"
            raise StainError(msg)
        return StainTarget(
            method=method, lab_mean=tuple(lab.mean(axis=0).tolist()), lab_std=tuple(lab.std(axis=0).tolist())
        )
    od = _tissue_od(pixels)
    stains = macenko_stains(od)
    if stains is None:
        msg = f"stain reference: no two stains found in {len(od)} tissue pixels to fit 'macenko' on"
        raise StainError(msg)
    maxima = np.percentile(_concentrations(od, stains), CONCENTRATION_PERCENTILE, axis=0)
    return StainTarget(
        method=method,
        stains=tuple(tuple(v) for v in stains.tolist()),
        max_concentrations=tuple(maxima.tolist()),
    )


def read_reference(path: str | Path) -> list[np.ndarray]:
    """The reference tiles of config ``model: stain: reference``: one image file, or a folder's images.

    Raises
    ------
    StainError
        When the path is missing, holds no image, or an image cannot be read.
    """
    from .patches import image_files, read_image

    path = Path(path)
    files = image_files(path) if path.is_dir() else [path] if path.is_file() else []
    if not files:
        msg = f"config 'model: stain: reference': no image file at {path}"
        raise StainError(msg)
    try:
        return [read_image(file) for file in files]
    except PatchError as error:
        msg = f"config 'model: stain: reference': {error}"
        raise StainError(msg) from error


def _tissue_lab(pixels: np.ndarray) -> np.ndarray | None:
    """(pixel, channel) Lab of the non-white pixels of (pixel, 3) RGB values; None if too few."""
    lab = rgb2lab(pixels.reshape(-1, 1, 3)).reshape(-1, 3)
    tissue = lab[lab[:, 0] < WHITE_LIGHTNESS]
    return tissue if len(tissue) >= MIN_TISSUE_PIXELS else None


def normalize(tile: np.ndarray, target: StainTarget) -> np.ndarray:
    """A tile's stain normalized to ``target`` (uint8, same shape); unchanged when it has too little tissue.

    Background pixels keep their brightness: Macenko rebuilds every pixel from its concentrations
    (white stays white), Reinhard moves only the tissue pixels.
    """
    tile = np.asarray(tile, np.uint8)
    if target.method == "reinhard":
        return _reinhard(tile, target)
    return _macenko(tile, target)


def _macenko(tile: np.ndarray, target: StainTarget) -> np.ndarray:
    od = optical_density(tile.reshape(-1, 3))
    tissue = (od > OD_THRESHOLD).all(axis=1)
    stained = (od > OD_THRESHOLD).any(axis=1).mean()  # not background
    stains = macenko_stains(od[tissue]) if stained >= MIN_TISSUE_SHARE else None
    if stains is None:
        return tile
    concentrations = _concentrations(od, stains)
    maxima = np.percentile(concentrations[tissue], CONCENTRATION_PERCENTILE, axis=0)
    if not (np.isfinite(maxima).all() and (maxima > 1e-6).all()):
        return tile
    concentrations *= np.asarray(target.max_concentrations) / maxima
    rebuilt = 256.0 * np.power(10.0, -concentrations @ np.asarray(target.stains)) - 1.0
    weight = _tissue_weight(od.min(axis=1))[:, None]  # background kept
    blended = weight * np.nan_to_num(rebuilt, nan=255.0) + (1 - weight) * tile.reshape(-1, 3)
    return np.clip(blended, 0, 255).round().astype(np.uint8).reshape(tile.shape)


def _tissue_weight(od_min: np.ndarray) -> np.ndarray:
    """0 for background, 1 for tissue, from a pixel's smallest channel OD: where changes fade in."""
    return _ramp(od_min, OD_THRESHOLD / 2, 1.5 * OD_THRESHOLD)


def _ramp(values: np.ndarray, start: float, end: float) -> np.ndarray:
    """0 at or below ``start``, 1 at or above ``end``, linear between: a seamless tissue weight."""
    return np.clip((values - start) / (end - start), 0.0, 1.0)


def _reinhard(tile: np.ndarray, target: StainTarget) -> np.ndarray:
    lab = rgb2lab(tile)
    flat = lab.reshape(-1, 3)
    tissue = flat[:, 0] < WHITE_LIGHTNESS
    if tissue.sum() < max(MIN_TISSUE_PIXELS, MIN_TISSUE_SHARE * len(flat)):
        return tile
    mean, std = flat[tissue].mean(axis=0), flat[tissue].std(axis=0)
    scale = np.clip(np.asarray(target.lab_std) / np.maximum(std, 1e-6), 1 / MAX_SCALE, MAX_SCALE)
    moved = (flat - mean) * scale + np.asarray(target.lab_mean)
    weight = _ramp(WHITE_LIGHTNESS + 5 - flat[:, 0], 0.0, 10.0)[:, None]  # 0 for white, 1 below L 85
    flat = weight * moved + (1 - weight) * flat
    flat[:, 0] = np.clip(flat[:, 0], 0, 100)
    rgb = lab2rgb(flat.reshape(lab.shape))
    return np.clip(np.nan_to_num(rgb, nan=1.0) * 255.0, 0, 255).round().astype(np.uint8)


def hed_augment(tile: np.ndarray, rng: np.random.Generator, *, scale: float, shift: float) -> np.ndarray:
    """Stain augmentation in HED space (Tellez et al. 2019): each of H, E and DAB scaled and shifted.

    Parameters
    ----------
    tile : numpy.ndarray
        uint8 RGB, (row, column, channel).
    rng : numpy.random.Generator
        Draws ``alpha ~ U(1 - scale, 1 + scale)`` and ``beta ~ U(-shift, shift)`` per channel; the same
        generator state gives the same result.
    scale, shift : float
        The ranges (0 and 0 return the tile). The shift is in scikit-image's HED units, where tissue's
        H and E are about 0.02-0.15, so 0.01-0.05 is already strong; it fades out over background
        (the tissue ramp of normalization), so white stays white.

    Returns
    -------
    numpy.ndarray
        uint8 RGB of the same shape.
    """
    tile = np.asarray(tile, np.uint8)
    alpha = rng.uniform(1 - scale, 1 + scale, 3)
    beta = rng.uniform(-shift, shift, 3)
    if scale == 0 and shift == 0:
        return tile
    hed = rgb2hed(tile)
    od = optical_density(tile.reshape(-1, 3)).min(axis=1).reshape(tile.shape[:2])
    tissue = _tissue_weight(od)[..., None]  # background is not tinted
    rgb = hed2rgb(hed * alpha + beta * tissue)
    return np.clip(np.nan_to_num(rgb, nan=1.0) * 255.0, 0, 255).round().astype(np.uint8)
