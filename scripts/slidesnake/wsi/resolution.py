"""The resolution policy: a slide's microns per pixel, the level to read and the tiling plan.

Pure functions of the slide's facts and the settings; nothing here reads pixels.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SlideError
from ..settings import ResolutionPolicy
from .info import SlideInfo

#: OpenSlide's standard properties of the microns per pixel (``openslide.PROPERTY_NAME_MPP_X`` / ``_Y``),
#: written out so that planning tiles does not load OpenSlide.
PROPERTY_MPP_X = "openslide.mpp-x"
PROPERTY_MPP_Y = "openslide.mpp-y"

log = logging.getLogger(__name__)

#: Microns per pixel outside this range are taken as a scanner writing nonsense.
PLAUSIBLE_MPP = (0.05, 20.0)
#: A sheet ``mpp`` that differs from the file's own MPP by more than this (relative to the file's)
#: is used, but warned about at ingest and flagged in ``results/slides.tsv``: a typo, or a slide
#: exported at another magnification, makes every tile the wrong size.
SHEET_MPP_TOLERANCE = 0.10


def property_float(props: Mapping[str, Any], key: str) -> float | None:
    """A positive finite number from a slide's properties, or None."""
    try:
        value = float(props[key])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def file_mpp(props: Mapping[str, Any]) -> float | None:
    """The level-0 microns per pixel (x) a slide file records, plausible or not; None if none."""
    return property_float(props, PROPERTY_MPP_X)


def sheet_mpp_mismatch(sheet_mpp: float, own_mpp: float | None) -> str:
    """What to flag when a sheet's MPP differs from the file's own by more than :data:`SHEET_MPP_TOLERANCE`.

    Parameters
    ----------
    sheet_mpp : float
        The sheet's ``mpp`` of the slide.
    own_mpp : float or None
        The file's own MPP (:func:`file_mpp`); None: nothing to compare with.

    Returns
    -------
    str
        E.g. ``sheet MPP 0.500 differs from the file's 0.250 um/px by more than 10%``; empty when
        they agree.
    """
    if own_mpp is None or abs(sheet_mpp / own_mpp - 1) <= SHEET_MPP_TOLERANCE:
        return ""
    return (
        f"sheet MPP {sheet_mpp:.3f} differs from the file's {own_mpp:.3f} um/px "
        f"by more than {SHEET_MPP_TOLERANCE:.0%}"
    )


def resolve_mpp(
    slide_id: str,
    path: str | Path,
    props: Mapping[str, Any],
    *,
    sheet_mpp: float | None,
    mpp_override: float | None,
) -> tuple[float, float, str]:
    """Decide the level-0 microns per pixel of a slide.

    The sheet's ``mpp`` column wins, then the file's own value, then the
    config's ``resolution: mpp_override``. A sheet value that differs from the
    file's by more than :data:`SHEET_MPP_TOLERANCE` is logged as a warning.

    Returns
    -------
    tuple of (float, float, str)
        MPP x, MPP y and where they came from (``sheet``, ``slide`` or ``config``).

    Raises
    ------
    SlideError
        When no plausible MPP is known.
    """
    low, high = PLAUSIBLE_MPP
    if sheet_mpp is not None and not (isinstance(sheet_mpp, float) and math.isnan(sheet_mpp)):
        if not low <= float(sheet_mpp) <= high:
            raise SlideError(
                slide_id, path, f"sheet column 'mpp' = {sheet_mpp} is outside {low}-{high} um/px"
            )
        mismatch = sheet_mpp_mismatch(float(sheet_mpp), file_mpp(props))
        if mismatch:
            log.warning("%s: %s; the sheet's value is used (sheet column 'mpp')", slide_id, mismatch)
        return float(sheet_mpp), float(sheet_mpp), "sheet"
    mpp_x = property_float(props, PROPERTY_MPP_X)
    mpp_y = property_float(props, PROPERTY_MPP_Y)
    if mpp_x and mpp_y and low <= mpp_x <= high and low <= mpp_y <= high:
        return mpp_x, mpp_y, "slide"
    if mpp_override is not None:
        return float(mpp_override), float(mpp_override), "config"
    found = f"mpp-x={props.get(PROPERTY_MPP_X)}, mpp-y={props.get(PROPERTY_MPP_Y)}"
    problem = (
        f"no usable microns per pixel in the file ({found}); give it in the sheet column 'mpp' "
        "or in config 'resolution: mpp_override'"
    )
    raise SlideError(slide_id, path, problem)


def choose_level(
    mpp: float, downsamples: tuple[float, ...], target_mpp: float, tolerance: float
) -> tuple[int, float, float]:
    """Pick the pyramid level to read for a target resolution.

    The chosen level is the coarsest one that is still at least as fine as the
    target (within ``tolerance``, relative). If its resolution is within the
    tolerance of the target it is used as it is; otherwise it is resampled.

    Parameters
    ----------
    mpp : float
        Level-0 microns per pixel.
    downsamples : sequence of float
        Level-0 pixels per level pixel, per level.
    target_mpp : float
        Wanted microns per pixel.
    tolerance : float
        Relative difference between a level's MPP and the target that counts as equal.

    Returns
    -------
    tuple of (int, float, float)
        Level index, that level's MPP, and the scale (level pixels per target
        pixel; 1.0 when no resampling is needed).
    """
    level_mpps = [mpp * d for d in downsamples]
    candidates = [i for i, m in enumerate(level_mpps) if m <= target_mpp * (1 + tolerance)]
    best = max(candidates, key=lambda i: level_mpps[i]) if candidates else 0
    level_mpp = level_mpps[best]
    scale = 1.0 if abs(level_mpp / target_mpp - 1) <= tolerance else target_mpp / level_mpp
    return best, level_mpp, scale


@dataclass(frozen=True, kw_only=True)
class TilePlan:
    """How a slide is tiled: the tiling decision, kept apart from what the file is.

    Attributes
    ----------
    target_mpp : float
        The resolution asked for.
    tile_size : int
        Tile side in target pixels.
    level : int
        The pyramid level read to make tiles.
    level_mpp : float
        Microns per pixel of that level.
    scale : float
        Level pixels per target pixel; 1.0 means the level is used as it is.
    level0_per_target : float
        Level-0 pixels per target pixel.
    tile_mpp : float
        The actual microns per pixel of the tiles (the target, or the chosen
        level's own MPP when that is within the tolerance and used as it is).
    target_width, target_height : int
        Size of the whole slide at the target resolution, in target pixels.
    """

    target_mpp: float
    tile_size: int
    level: int
    level_mpp: float
    scale: float
    level0_per_target: float
    tile_mpp: float
    target_width: int
    target_height: int

    @property
    def grid_shape(self) -> tuple[int, int]:
        """Rows and columns of whole tiles (the partial strip at the right and bottom is never tiled)."""
        return self.target_height // self.tile_size, self.target_width // self.tile_size

    @property
    def tile_size_level0(self) -> float:
        """Tile side in level-0 pixels."""
        return self.tile_size * self.level0_per_target

    def to_dict(self) -> dict:
        """The plan as JSON-ready values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TilePlan:
        """Rebuild a plan from :meth:`to_dict` output."""
        return cls(**{field.name: data[field.name] for field in dataclasses.fields(cls)})


def plan_tiling(info: SlideInfo, policy: ResolutionPolicy, tile_size: int) -> TilePlan:
    """Decide how to tile a slide: the level to read, the scale, the target size.

    Parameters
    ----------
    info : SlideInfo
        The slide's facts.
    policy : ResolutionPolicy
        Target MPP and tolerance.
    tile_size : int
        Tile side in target pixels.

    Returns
    -------
    TilePlan
        The tiling decision.
    """
    level, level_mpp, scale = choose_level(
        info.mpp_x, info.level_downsamples, policy.target_mpp, policy.tolerance
    )
    level0_per_target = info.level_downsamples[level] * scale
    return TilePlan(
        target_mpp=policy.target_mpp,
        tile_size=tile_size,
        level=level,
        level_mpp=level_mpp,
        scale=scale,
        level0_per_target=level0_per_target,
        tile_mpp=info.mpp_x * level0_per_target,
        target_width=int(info.width / level0_per_target),
        target_height=int(info.height / level0_per_target),
    )


def empty_plan(policy: ResolutionPolicy, tile_size: int) -> TilePlan:
    """The plan of a slide that could not be read: the target geometry, and no pixels.

    Parameters
    ----------
    policy : ResolutionPolicy
        Target MPP.
    tile_size : int
        Tile side in target pixels.

    Returns
    -------
    TilePlan
        Level 0 at scale 1, target size 0 x 0.
    """
    return TilePlan(
        target_mpp=policy.target_mpp,
        tile_size=tile_size,
        level=0,
        level_mpp=policy.target_mpp,
        scale=1.0,
        level0_per_target=1.0,
        tile_mpp=policy.target_mpp,
        target_width=0,
        target_height=0,
    )
