"""Read a slide's facts once: metadata, MPP, checksum, and the backend that reads it.

The fast path (tifffile) is chosen where it covers the file's layout and decodes it; else OpenSlide.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import openslide

from ..checksums import file_sha256
from ..errors import SlideError
from .backends.openslide import open_slide
from .backends.tifffile import FAST_VENDORS, fast_path_supported
from .info import Reader, SlideInfo
from .reader import SlideReader
from .resolution import file_mpp, property_float, resolve_mpp

log = logging.getLogger(__name__)


def decode_check(info: SlideInfo) -> None:
    """Decode a small piece in the middle of the first and the last level with the slide's reader.

    Raises
    ------
    SlideError
        When the reader cannot open the file or decode its tiles.
    """
    with SlideReader(info) as reader:
        for level in sorted({0, len(info.level_dimensions) - 1}):
            width, height = info.level_dimensions[level]
            reader.read_level(level, width // 2, height // 2, 16, 16)


def probe_reader(info: SlideInfo) -> Reader:
    """The backend to read a slide with: ``tifffile`` when the fast path covers and decodes it.

    Parameters
    ----------
    info : SlideInfo
        The slide (its ``reader`` is ignored).

    Returns
    -------
    {'tifffile', 'openslide'}
        The backend.

    Raises
    ------
    SlideError
        When neither backend decodes the slide.
    """
    if info.vendor in FAST_VENDORS and fast_path_supported(info.path, info.level_dimensions):
        try:
            decode_check(dataclasses.replace(info, reader="tifffile"))
            return "tifffile"
        except SlideError as err:
            log.warning(
                "%s: the fast path cannot decode it (%s); reading it with OpenSlide", info.slide_id, err
            )
    decode_check(dataclasses.replace(info, reader="openslide"))
    return "openslide"


def read_slide_info(
    path: str | Path, slide_id: str, *, sheet_mpp: float | None = None, mpp_override: float | None = None
) -> SlideInfo:
    """Read a slide's metadata, decide its MPP, checksum it and choose the backend that reads it.

    Parameters
    ----------
    path : str or Path
        The slide file.
    slide_id : str
        The sheet's id for the slide (used in every error message).
    sheet_mpp, mpp_override : float, optional
        MPP from the sheet column ``mpp`` and from config ``resolution: mpp_override``.

    Returns
    -------
    SlideInfo
        The slide's facts.

    Raises
    ------
    SlideError
        For unreadable files, a missing MPP or tiles that cannot be decoded.
    """
    with open_slide(path, slide_id) as slide:
        props = dict(slide.properties)
        mpp_x, mpp_y, source = resolve_mpp(
            slide_id, path, props, sheet_mpp=sheet_mpp, mpp_override=mpp_override
        )
        width, height = slide.dimensions
        try:  # decode one small region now, so broken tile data fails here and not hours later
            slide.read_region((width // 2, height // 2), slide.level_count - 1, (16, 16))
        except openslide.OpenSlideError as err:
            raise SlideError(slide_id, path, f"tile data cannot be decoded: {err}") from err
        info = SlideInfo(
            slide_id=slide_id,
            path=str(path),
            vendor=props.get(openslide.PROPERTY_NAME_VENDOR, "unknown"),
            width=width,
            height=height,
            level_dimensions=tuple(tuple(d) for d in slide.level_dimensions),
            level_downsamples=tuple(float(d) for d in slide.level_downsamples),
            mpp_x=mpp_x,
            mpp_y=mpp_y,
            mpp_source=source,
            objective_power=property_float(props, openslide.PROPERTY_NAME_OBJECTIVE_POWER),
            associated_images=tuple(sorted(slide.associated_images)),
            sha256=file_sha256(path),
            reader="openslide",
            status="ok",
            reason="",
            file_mpp=file_mpp(props),
        )
    return dataclasses.replace(info, reader=probe_reader(info))
