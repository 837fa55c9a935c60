"""One reader interface for every slide, :class:`SlideReader`, over the two pixel backends."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import tifffile

from ..errors import SlideError
from .backends.openslide import OpenSlideLevels
from .backends.tifffile import TiffLevels
from .info import Reader, SlideInfo
from .resample import area_resample
from .resolution import TilePlan

#: How target pixels are made from a level's (see :meth:`SlideReader.resampling`).
Resampling = Literal["none", "area", "jpeg-dct"]

#: Reader backends, recorded per slide in :attr:`SlideInfo.reader`.
READERS: tuple[Reader, ...] = ("tifffile", "openslide")

#: Side, in level pixels, of the pieces :meth:`SlideReader.read_overview` reads at a time.
OVERVIEW_BLOCK = 2048


class SlideReader:
    """Read regions of one slide, safely from many threads, through one of two backends.

    Parameters
    ----------
    info : SlideInfo
        The slide.
    reader : {'tifffile', 'openslide'}, optional
        The backend; default ``info.reader`` (decided by :func:`slidesnake.wsi.read_slide_info`).

    Raises
    ------
    SlideError
        When the backend cannot open the slide.
    """

    def __init__(self, info: SlideInfo, reader: Reader | None = None) -> None:
        self.info = info
        self.reader = reader or info.reader
        if self.reader not in READERS:
            msg = f"unknown reader {self.reader!r}; choose one of {READERS}"
            raise ValueError(msg)
        try:
            if self.reader == "tifffile":
                self._levels: TiffLevels | OpenSlideLevels = TiffLevels(info.path, info.level_dimensions)
            else:
                self._levels = OpenSlideLevels(info.path, info.slide_id, info.level_downsamples)
        except (tifffile.TiffFileError, OSError, ValueError) as err:
            raise SlideError(
                info.slide_id, info.path, f"the {self.reader} reader cannot open it: {err}"
            ) from err

    def __enter__(self) -> SlideReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_level(
        self, level: int, x: int, y: int, width: int, height: int, cache: dict | None = None
    ) -> np.ndarray:
        """Read a region of one pyramid level, given in that level's pixels.

        Parameters
        ----------
        level : int
            Pyramid level.
        x, y : int
            Top-left corner (column, row) in level pixels; may lie outside the slide.
        width, height : int
            Size in level pixels.
        cache : dict, optional
            Decoded tiles, shared by calls that read neighbouring regions so each
            tile is decoded once (fast path only; the caller owns and drops it).

        Returns
        -------
        numpy.ndarray
            (height, width, 3) uint8 RGB; white outside the slide. A region
            inside one tile of the fast path is a read-only view of the decoded
            tile; copy it before changing it.

        Raises
        ------
        SlideError
            When the tile data cannot be read or decoded.
        """
        try:
            return self._levels.read(level, x, y, width, height, cache)
        except SlideError:
            raise
        except Exception as err:
            problem = f"cannot read level {level} at x={x}, y={y} (level pixels) with {self.reader}: {err}"
            raise SlideError(self.info.slide_id, self.info.path, problem) from err

    def read_resampled(
        self,
        level: int,
        box: tuple[float, float, float, float],
        height: int,
        width: int,
        cache: dict | None = None,
    ) -> np.ndarray:
        """Read the part ``box`` of a level and area-average it to ``height`` x ``width``.

        Parameters
        ----------
        level : int
            Pyramid level.
        box : tuple of float
            ``(left, top, right, bottom)`` in level pixels; fractions allowed.
        height, width : int
            Output size in pixels.
        cache : dict, optional
            See :meth:`read_level`.

        Returns
        -------
        numpy.ndarray
            (height, width, 3) uint8 RGB.
        """
        left, top, right, bottom = (round(v, 6) for v in box)  # drop float noise before floor/ceil
        x0, y0 = math.floor(left), math.floor(top)
        x1, y1 = max(x0 + 1, math.ceil(right)), max(y0 + 1, math.ceil(bottom))
        region = self.read_level(level, x0, y0, x1 - x0, y1 - y0, cache)
        return area_resample(region, (left - x0, top - y0, right - x0, bottom - y0), height, width)

    def dct_factor(self, plan: TilePlan) -> int:
        """The reduction :meth:`read_target` can leave to libjpeg's DCT scaling, else 1.

        Parameters
        ----------
        plan : TilePlan
            The level and scale to read at.

        Returns
        -------
        int
            2, 4 or 8 when the plan's scale is exactly that, its level has JPEG tiles (fast path)
            whose sides it divides, and Pillow decodes them as tifffile does; otherwise 1.
        """
        factor = round(plan.scale)
        if not isinstance(self._levels, TiffLevels) or plan.scale != factor:
            return 1
        return factor if self._levels.can_scale(plan.level, factor) else 1

    def resampling(self, plan: TilePlan, *, jpeg_dct_scaling: bool) -> Resampling:
        """How :meth:`read_target` gets the plan's target pixels: ``none`` (the level is the target),
        ``area`` (block means of the level) or ``jpeg-dct`` (its JPEG tiles decoded reduced).
        """
        if plan.scale == 1:
            return "none"
        return "jpeg-dct" if jpeg_dct_scaling and self.dct_factor(plan) > 1 else "area"

    def read_target(
        self,
        plan: TilePlan,
        row: int,
        col: int,
        height: int,
        width: int,
        cache: dict | None = None,
        *,
        jpeg_dct_scaling: bool = False,
    ) -> np.ndarray:
        """Read a region given in target-resolution pixels of a tiling plan.

        Parameters
        ----------
        plan : TilePlan
            The level and scale to read at.
        row, col : int
            Top-left corner in target pixels.
        height, width : int
            Size in target pixels.
        cache : dict, optional
            See :meth:`read_level`.
        jpeg_dct_scaling : bool, optional
            Where :meth:`dct_factor` allows, decode the level's JPEG tiles reduced instead of
            averaging full-size pixels (config ``tiling: jpeg_dct_scaling``); regions reaching
            past the level's edge are averaged.

        Returns
        -------
        numpy.ndarray
            (height, width, 3) uint8 RGB: the chosen level's pixels covering the
            region, area-averaged (or DCT-scaled) when the level is finer than the target.
        """
        s = plan.scale
        if jpeg_dct_scaling and (factor := self.dct_factor(plan)) > 1:
            level_width, level_height = self.info.level_dimensions[plan.level]
            if (
                row >= 0
                and col >= 0
                and (col + width) * factor <= level_width
                and (row + height) * factor <= level_height
            ):
                try:
                    return self._levels.read(plan.level, col, row, width, height, cache, factor)
                except Exception as err:
                    where = f"row={row}, col={col} (target pixels)"
                    problem = f"cannot decode level {plan.level} reduced {factor}x at {where}: {err}"
                    raise SlideError(self.info.slide_id, self.info.path, problem) from err
        box = (col * s, row * s, (col + width) * s, (row + height) * s)
        return self.read_resampled(plan.level, box, height, width, cache)

    def read_overview(self, mpp: float) -> np.ndarray:
        """Return the whole slide at about ``mpp`` microns per pixel (for masks and thumbnails).

        Reads the coarsest level that is at least as fine as ``mpp`` in pieces of
        at most ``OVERVIEW_BLOCK`` level pixels a side and area-averages each
        piece, so a single-level gigapixel slide never sits in memory whole.

        Parameters
        ----------
        mpp : float
            Wanted microns per pixel.

        Returns
        -------
        numpy.ndarray
            (row, column, 3) uint8 image of the whole slide.
        """
        info = self.info
        wanted = mpp / info.mpp_x
        level = max((i for i, d in enumerate(info.level_downsamples) if d <= wanted * 1.001), default=0)
        level_width, level_height = info.level_dimensions[level]
        out_width = max(1, round(info.width * info.mpp_x / mpp))
        out_height = max(1, round(info.height * info.mpp_y / mpp))
        fx, fy = level_width / out_width, level_height / out_height
        step = max(1, int(OVERVIEW_BLOCK / max(fx, fy)))  # output pixels per piece side
        out = np.empty((out_height, out_width, 3), np.uint8)
        for r0 in range(0, out_height, step):
            r1 = min(out_height, r0 + step)
            for c0 in range(0, out_width, step):
                c1 = min(out_width, c0 + step)
                box = (c0 * fx, r0 * fy, c1 * fx, r1 * fy)
                out[r0:r1, c0:c1] = self.read_resampled(level, box, r1 - r0, c1 - c0)
        return out

    def close(self) -> None:
        """Release the file handles."""
        self._levels.close()
