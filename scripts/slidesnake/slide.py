"""Open whole-slide images, record their metadata and decide the resolution to tile at.

One reader interface, :class:`SlideReader`, with two backends that give the same
pixels for the same region:

- ``tifffile``, the fast path for TIFF-family slides (Aperio SVS with JPEG or
  JPEG 2000 tiles, generic tiled TIFF, Hamamatsu NDPI where tifffile exposes
  its JPEG restart intervals as tiles): it reads the compressed tiles of a
  level straight from the file and decodes them with tifffile/imagecodecs;
- ``openslide``, for every other format OpenSlide reads (MRXS, SCN, DICOM,
  BIF, Philips TIFF, ...), for TIFFs whose layout the fast path does not
  cover, and for files the fast path fails to decode.

The tests check pixel identity on JPEG and JPEG 2000 (YCbCr and RGB) SVS and a
deflate generic TIFF. One known difference: at a level whose downsample is not
an integer, OpenSlide maps a level pixel to a fractional level-0 position and
interpolates, so there the backends differ slightly.

Coordinates: ``x``/``y`` are columns/rows in level-0 pixels unless a name says
otherwise (``level`` pixels, ``target`` pixels); arrays are (row, column, channel).
Pixels outside the slide read as white, like OpenSlide's transparent pixels
flattened onto white.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import threading
from pathlib import Path

import numpy as np
import openslide
import tifffile
from PIL import Image

log = logging.getLogger(__name__)

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


@dataclasses.dataclass
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
    associated_images: list[str] = dataclasses.field(default_factory=list)
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
        return dataclasses.asdict(self)

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
        )
    if vendor in FAST_VENDORS and fast_path_supported(path, level_dimensions):
        fast = dataclasses.replace(info, reader="tifffile")
        try:
            _decode_check(fast)
            return fast
        except SlideError as err:
            log.warning("%s: the fast path cannot decode it (%s); reading it with OpenSlide", slide_id, err)
    _decode_check(info)
    return info


def _decode_check(info: SlideInfo) -> None:
    """Decode a small piece in the middle of the level that will be tiled, with the slide's reader."""
    width, height = info.level_dimensions[info.level]
    with SlideReader(info) as reader:
        reader.read_level(info.level, width // 2, height // 2, 16, 16)


def to_rgb(region: Image.Image) -> np.ndarray:
    """Flatten an RGBA OpenSlide region onto white and return (row, column, 3) uint8."""
    rgba = np.asarray(region)
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgb)
    alpha = alpha.astype(np.uint16)
    return ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


def area_resample(
    region: np.ndarray, box: tuple[float, float, float, float], height: int, width: int
) -> np.ndarray:
    """Resample the part ``box`` of an image to ``height`` x ``width`` pixels by area averaging.

    Parameters
    ----------
    region : numpy.ndarray
        (row, column, 3) uint8 source image.
    box : tuple of float
        ``(left, top, right, bottom)`` of the part to resample, in ``region`` pixels
        (fractions allowed: partly covered source pixels count by their covered area).
    height, width : int
        Output size in pixels.

    Returns
    -------
    numpy.ndarray
        (height, width, 3) uint8. An exact integer reduction of the whole region
        is the rounded mean of each block (``Image.reduce``); other factors use
        Pillow's box filter.
    """
    rows, cols = region.shape[:2]
    if box == (0, 0, cols, rows):
        if (rows, cols) == (height, width):
            return region
        factor = cols // width
        if factor > 1 and (rows, cols) == (height * factor, width * factor):
            return np.asarray(Image.fromarray(region).reduce(factor))
    image = Image.fromarray(region).resize((width, height), Image.Resampling.BOX, box=box)
    return np.asarray(image)


def _c_round(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.floor(np.abs(values) + 0.5)


_CHROMA = np.arange(256, dtype=np.float64) - 128
#: OpenSlide's YCbCr -> RGB tables for Aperio JPEG 2000 (compression 33003), so both readers agree.
_R_CR = _c_round(1.402 * _CHROMA).astype(np.int16)
_G_CB = _c_round(65536 * (0.5 - 0.34414 * _CHROMA)).astype(np.int32)
_G_CR = _c_round(65536 * -0.71414 * _CHROMA).astype(np.int32)
_B_CB = _c_round(1.772 * _CHROMA).astype(np.int16)


def _ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    luma = ycbcr[..., 0].astype(np.int16)
    cb, cr = ycbcr[..., 1], ycbcr[..., 2]
    rgb = np.empty(ycbcr.shape, np.uint8)
    rgb[..., 0] = np.clip(luma + _R_CR[cr], 0, 255)
    rgb[..., 1] = np.clip(luma + ((_G_CB[cb] + _G_CR[cr]) >> 16), 0, 255)
    rgb[..., 2] = np.clip(luma + _B_CB[cb], 0, 255)
    return rgb


def _fast_page_ok(page: tifffile.TiffPage) -> bool:
    return (
        page.dtype == np.uint8
        and page.samplesperpixel == 3
        and page.planarconfig == 1
        and page.imagedepth == 1
        and len(page.chunks) == 3
        and page.chunks[0] * page.chunks[1] <= MAX_SEGMENT_PIXELS
        and page.compression in FAST_COMPRESSIONS
        and page.photometric in (2, 6)  # RGB, YCbCr
    )


def _level_pages(tiff: tifffile.TiffFile, level_dimensions: list[tuple[int, int]]) -> list | None:
    """The TIFF page of every OpenSlide level (matched by size), or None if one is missing or unsupported."""
    if not tiff.series:
        return None
    by_size = {}
    for level in tiff.series[0].levels:
        if len(level.pages) == 1 and isinstance(level.keyframe, tifffile.TiffPage):
            by_size[(level.keyframe.imagewidth, level.keyframe.imagelength)] = level.keyframe
    pages = [by_size.get(tuple(size)) for size in level_dimensions]
    if any(page is None or not _fast_page_ok(page) for page in pages):
        return None
    return pages


def fast_path_supported(path: str | Path, level_dimensions: list[tuple[int, int]]) -> bool:
    """Whether the tifffile fast path can read every level of a slide.

    Parameters
    ----------
    path : str or Path
        The slide file.
    level_dimensions : list of (width, height)
        OpenSlide's levels; each must be one TIFF page of the same size, 8-bit RGB
        or YCbCr, tiled (or in strips of at most ``MAX_SEGMENT_PIXELS``), with a
        compression in ``FAST_COMPRESSIONS``.

    Returns
    -------
    bool
        True when :class:`SlideReader` can use the ``tifffile`` backend.
    """
    try:
        with tifffile.TiffFile(path) as tiff:
            return _level_pages(tiff, level_dimensions) is not None
    except (tifffile.TiffFileError, OSError, ValueError):
        return False


class _TiffLevels:
    """Pyramid levels of a TIFF-family slide, read by decoding its compressed tiles directly.

    Tiles (or strips) are read with ``os.pread`` and decoded by tifffile's page
    decoder (imagecodecs), so reads from many threads need no lock.
    """

    def __init__(self, path: str, level_dimensions: list[tuple[int, int]]) -> None:
        self._tiff = tifffile.TiffFile(path)
        try:
            pages = _level_pages(self._tiff, level_dimensions)
            if pages is None:
                raise ValueError("its TIFF levels do not match the recorded levels or are not supported")
            self._pages = pages
            self._decoders = [page.decode for page in pages]
            self._fd = os.open(path, os.O_RDONLY)
        except Exception:
            self._tiff.close()
            raise

    def _segment(self, level: int, index: int, cache: dict | None) -> np.ndarray | None:
        key = (level, index)
        if cache is not None and key in cache:
            return cache[key]
        page = self._pages[level]
        count = page.databytecounts[index]
        data = os.pread(self._fd, count, page.dataoffsets[index]) if count else None
        segment, _, _ = self._decoders[level](
            data, index, jpegtables=page.jpegtables, jpegheader=page.jpegheader
        )
        if segment is not None:
            segment = segment[0]  # (depth, rows, columns, samples) -> (rows, columns, samples)
            if page.compression == 33003:
                segment = _ycbcr_to_rgb(segment)
        if cache is not None:
            cache[key] = segment
        return segment

    def read(self, level: int, x: int, y: int, width: int, height: int, cache: dict | None) -> np.ndarray:
        page = self._pages[level]
        seg_rows, seg_cols = page.chunks[:2]
        per_row = -(-page.imagewidth // seg_cols)
        left, top = max(x, 0), max(y, 0)
        right, bottom = min(x + width, page.imagewidth), min(y + height, page.imagelength)
        first_y, last_y = top // seg_rows, (bottom - 1) // seg_rows
        first_x, last_x = left // seg_cols, (right - 1) // seg_cols
        inside = (left, top, right, bottom) == (x, y, x + width, y + height)
        if inside and first_y == last_y and first_x == last_x:  # within one tile: a read-only view of it
            segment = self._segment(level, first_y * per_row + first_x, cache)
            if segment is not None:
                view = segment[y - first_y * seg_rows :, x - first_x * seg_cols :][:height, :width]
                view.flags.writeable = False
                return view
        out = np.full((height, width, 3), 255, np.uint8)
        if right <= left or bottom <= top:
            return out
        for seg_y in range(first_y, last_y + 1):
            for seg_x in range(first_x, last_x + 1):
                segment = self._segment(level, seg_y * per_row + seg_x, cache)
                if segment is None:  # a tile the scanner never wrote: background
                    continue
                y0, x0 = seg_y * seg_rows, seg_x * seg_cols
                r0, r1 = max(top, y0), min(bottom, y0 + segment.shape[0])
                c0, c1 = max(left, x0), min(right, x0 + segment.shape[1])
                out[r0 - y : r1 - y, c0 - x : c1 - x] = segment[r0 - y0 : r1 - y0, c0 - x0 : c1 - x0]
        return out

    def close(self) -> None:
        os.close(self._fd)
        self._tiff.close()


class _OpenSlideLevels:
    """Pyramid levels read with OpenSlide ``read_region``, one handle per thread."""

    def __init__(self, info: SlideInfo) -> None:
        self._info = info
        self._local = threading.local()
        self._handles: list[openslide.OpenSlide] = []
        self._lock = threading.Lock()

    def _slide(self) -> openslide.OpenSlide:
        slide = getattr(self._local, "slide", None)
        if slide is None:
            slide = open_slide(self._info.path, self._info.slide_id)
            self._local.slide = slide
            with self._lock:
                self._handles.append(slide)
        return slide

    def read(self, level: int, x: int, y: int, width: int, height: int, cache: dict | None) -> np.ndarray:
        downsample = self._info.level_downsamples[level]
        region = self._slide().read_region(
            (round(x * downsample), round(y * downsample)), level, (width, height)
        )
        return to_rgb(region)

    def close(self) -> None:
        with self._lock:
            for slide in self._handles:
                slide.close()
            self._handles.clear()
        self._local = threading.local()


class SlideReader:
    """Read regions of one slide, safely from many threads, through one of two backends.

    Parameters
    ----------
    info : SlideInfo
        The slide and its resolution decision.
    reader : str, optional
        ``tifffile`` or ``openslide``; default ``info.reader`` (decided by
        :func:`read_slide_info`).

    Raises
    ------
    SlideError
        When the backend cannot open the slide.
    """

    def __init__(self, info: SlideInfo, reader: str | None = None) -> None:
        self.info = info
        self.reader = reader or info.reader
        if self.reader not in READERS:
            raise ValueError(f"unknown reader {self.reader!r}; choose one of {READERS}")
        try:
            if self.reader == "tifffile":
                self._levels: _TiffLevels | _OpenSlideLevels = _TiffLevels(info.path, info.level_dimensions)
            else:
                self._levels = _OpenSlideLevels(info)
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
            raise SlideError(
                self.info.slide_id,
                self.info.path,
                f"cannot read level {level} at x={x}, y={y} (level pixels) with {self.reader}: {err}",
            ) from err

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

    def read_target(
        self, row: int, col: int, height: int, width: int, cache: dict | None = None
    ) -> np.ndarray:
        """Read a region given in target-resolution pixels.

        Parameters
        ----------
        row, col : int
            Top-left corner in target pixels.
        height, width : int
            Size in target pixels.
        cache : dict, optional
            See :meth:`read_level`.

        Returns
        -------
        numpy.ndarray
            (height, width, 3) uint8 RGB: the chosen level's pixels covering the
            region, area-averaged when the level is finer than the target.
        """
        s = self.info.scale
        box = (col * s, row * s, (col + width) * s, (row + height) * s)
        return self.read_resampled(self.info.level, box, height, width, cache)

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
