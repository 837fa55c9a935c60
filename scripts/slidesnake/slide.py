"""Open whole-slide images, record their metadata and decide the resolution to tile at.

One reader interface, :class:`SlideReader`, with two backends that give the same
pixels for the same region:

- ``tifffile``, the fast path for TIFF-family slides (Aperio SVS with JPEG or
  JPEG 2000 tiles, generic tiled TIFF, Hamamatsu NDPI where tifffile exposes
  its JPEG restart intervals as tiles): it reads the compressed tiles of a
  level straight from the file and decodes them with tifffile/imagecodecs;
- ``openslide``, for every other format OpenSlide reads (MRXS, SCN, DICOM,
  BIF, Philips TIFF, ...), and for TIFFs whose layout the fast path does not
  cover.

Coordinates: ``x``/``y`` are columns/rows in level-0 pixels unless a name says
otherwise (``level`` pixels, ``target`` pixels); arrays are (row, column, channel).
Pixels outside the slide read as white, like OpenSlide's transparent pixels
flattened onto white.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import openslide
import tifffile
from PIL import Image

#: Microns per pixel outside this range are taken as a scanner writing nonsense.
PLAUSIBLE_MPP = (0.05, 20.0)

#: Reader backends, recorded per slide in :attr:`SlideInfo.reader`.
READERS = ("tifffile", "openslide")

#: OpenSlide vendors whose files the fast path may read (TIFF layouts it understands).
FAST_VENDORS = frozenset({"aperio", "generic-tiff", "hamamatsu"})

#: TIFF compressions the fast path decodes: none, LZW, JPEG, deflate, Aperio JPEG 2000 (YCbCr, RGB).
FAST_COMPRESSIONS = frozenset({1, 5, 7, 8, 32946, 33003, 33005})

#: Largest tile or strip (pixels) the fast path decodes at once; larger ones go to OpenSlide.
MAX_SEGMENT_PIXELS = 1 << 24

#: Side, in level pixels, of the pieces :meth:`SlideReader.read_overview` reads at a time.
OVERVIEW_BLOCK = 2048


class SlideError(ValueError):
    """A slide that cannot be used, with the slide id and file in the message."""

    def __init__(self, slide_id: str, path: str | Path, problem: str) -> None:
        super().__init__(f"slide {slide_id!r} ({path}): {problem}")
        self.slide_id = slide_id
        self.path = str(path)


@dataclass
class SlideInfo:
    """What slidesnake knows about one slide and how it will read it.

    Attributes
    ----------
    slide_id, path : str
        The sheet's id and the file.
    vendor : str
        OpenSlide's vendor name (``aperio``, ``generic-tiff``, ...).
    width, height : int
        Level-0 size in pixels.
    level_dimensions : list of (width, height)
        Size of every pyramid level in pixels.
    level_downsamples : list of float
        Level-0 pixels per level pixel, per level.
    mpp_x, mpp_y : float
        Level-0 microns per pixel used by slidesnake.
    mpp_source : str
        Where the MPP came from: ``slide``, ``sheet`` or ``config``.
    objective_power : float or None
        The scan's nominal objective magnification, if the file records one.
    associated_images : list of str
        Names of the label, macro and thumbnail images the file carries.
    target_mpp : float
        The resolution tiles are made at.
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
        Size of the whole slide at the target resolution.
    sha256 : str
        Checksum of the slide file, for provenance and duplicate detection.
    reader : str
        The backend that reads its pixels: ``tifffile`` (fast path) or ``openslide``.
    """

    slide_id: str
    path: str
    vendor: str
    width: int
    height: int
    level_dimensions: list[tuple[int, int]]
    level_downsamples: list[float]
    mpp_x: float
    mpp_y: float
    mpp_source: str
    objective_power: float | None
    associated_images: list[str] = field(default_factory=list)
    target_mpp: float = 0.5
    level: int = 0
    level_mpp: float = 0.5
    scale: float = 1.0
    level0_per_target: float = 1.0
    tile_mpp: float = 0.5
    target_width: int = 0
    target_height: int = 0
    sha256: str = ""
    reader: str = "openslide"

    def to_dict(self) -> dict:
        """Return the fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SlideInfo:
        """Rebuild a :class:`SlideInfo` from :meth:`to_dict` output."""
        data = dict(data)
        data["level_dimensions"] = [tuple(d) for d in data["level_dimensions"]]
        return cls(**data)


def open_slide(path: str | Path, slide_id: str) -> openslide.OpenSlide:
    """Open a slide with OpenSlide, turning its failures into a :class:`SlideError`."""
    if not Path(path).is_file():
        raise SlideError(slide_id, path, "file not found (sheet column 'path')")
    try:
        return openslide.OpenSlide(str(path))
    except openslide.OpenSlideUnsupportedFormatError as err:
        raise SlideError(slide_id, path, f"not a slide format OpenSlide can read ({err})") from err
    except openslide.OpenSlideError as err:
        raise SlideError(slide_id, path, f"OpenSlide cannot open it: {err}") from err


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 22) -> str:
    """Return the SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def _property_float(props: dict, key: str) -> float | None:
    try:
        value = float(props[key])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def resolve_mpp(
    slide_id: str, path: str | Path, props: dict, sheet_mpp: float | None, config_mpp: float | None
) -> tuple[float, float, str]:
    """Decide the level-0 microns per pixel of a slide.

    The sheet's ``mpp`` column wins, then the file's own value, then the
    config's ``resolution.mpp_override``.

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
        return float(sheet_mpp), float(sheet_mpp), "sheet"
    mpp_x = _property_float(props, openslide.PROPERTY_NAME_MPP_X)
    mpp_y = _property_float(props, openslide.PROPERTY_NAME_MPP_Y)
    if mpp_x and mpp_y and low <= mpp_x <= high and low <= mpp_y <= high:
        return mpp_x, mpp_y, "slide"
    if config_mpp is not None:
        return float(config_mpp), float(config_mpp), "config"
    found = (
        f"mpp-x={props.get(openslide.PROPERTY_NAME_MPP_X)}, mpp-y={props.get(openslide.PROPERTY_NAME_MPP_Y)}"
    )
    raise SlideError(
        slide_id,
        path,
        f"no usable microns per pixel in the file ({found}); give it in the sheet column 'mpp' "
        "or in config 'resolution: mpp_override'",
    )


def choose_level(
    mpp: float, downsamples: list[float], target_mpp: float, tolerance: float
) -> tuple[int, float, float]:
    """Pick the pyramid level to read for a target resolution.

    The chosen level is the coarsest one that is still at least as fine as the
    target (within ``tolerance``, relative). If its resolution is within the
    tolerance of the target it is used as it is; otherwise it is resampled.

    Parameters
    ----------
    mpp : float
        Level-0 microns per pixel.
    downsamples : list of float
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
    if not candidates:
        best = 0
    else:
        best = max(candidates, key=lambda i: level_mpps[i])
    level_mpp = level_mpps[best]
    scale = 1.0 if abs(level_mpp / target_mpp - 1) <= tolerance else target_mpp / level_mpp
    return best, level_mpp, scale


def read_slide_info(
    path: str | Path,
    slide_id: str,
    target_mpp: float = 0.5,
    tolerance: float = 0.05,
    sheet_mpp: float | None = None,
    config_mpp: float | None = None,
) -> SlideInfo:
    """Read a slide's metadata and decide how it will be tiled.

    Parameters
    ----------
    path : str or Path
        The slide file.
    slide_id : str
        The sheet's id for the slide (used in every error message).
    target_mpp, tolerance : float
        The resolution policy (see :func:`choose_level`).
    sheet_mpp, config_mpp : float, optional
        MPP overrides from the sheet and from the config.

    Returns
    -------
    SlideInfo
        Metadata and the resolution decision.

    Raises
    ------
    SlideError
        For unreadable files, missing MPP or tiles that cannot be decoded.
    """
    slide = open_slide(path, slide_id)
    with slide:
        props = dict(slide.properties)
        mpp_x, mpp_y, source = resolve_mpp(slide_id, path, props, sheet_mpp, config_mpp)
        level, level_mpp, scale = choose_level(mpp_x, list(slide.level_downsamples), target_mpp, tolerance)
        width, height = slide.dimensions
        try:  # decode one small region now, so broken tile data fails here and not hours later
            slide.read_region((width // 2, height // 2), slide.level_count - 1, (16, 16))
        except openslide.OpenSlideError as err:
            raise SlideError(slide_id, path, f"tile data cannot be decoded: {err}") from err
        vendor = props.get(openslide.PROPERTY_NAME_VENDOR, "unknown")
        level_dimensions = [tuple(d) for d in slide.level_dimensions]
        level0_per_target = slide.level_downsamples[level] * scale
        info = SlideInfo(
            slide_id=slide_id,
            path=str(path),
            vendor=vendor,
            width=width,
            height=height,
            level_dimensions=level_dimensions,
            level_downsamples=[float(d) for d in slide.level_downsamples],
            mpp_x=mpp_x,
            mpp_y=mpp_y,
            mpp_source=source,
            objective_power=_property_float(props, openslide.PROPERTY_NAME_OBJECTIVE_POWER),
            associated_images=sorted(slide.associated_images),
            target_mpp=target_mpp,
            level=level,
            level_mpp=level_mpp,
            scale=scale,
            level0_per_target=level0_per_target,
            tile_mpp=mpp_x * level0_per_target,
            target_width=int(width / level0_per_target),
            target_height=int(height / level0_per_target),
            sha256=file_sha256(path),
            reader="tifffile" if vendor in FAST_VENDORS and fast_path_supported(path, level_dimensions) else "openslide",
        )
    with SlideReader(info) as reader:  # the chosen backend must decode the level that will be tiled
        level_width, level_height = level_dimensions[level]
        reader.read_level(level, level_width // 2, level_height // 2, 16, 16)
    return info


