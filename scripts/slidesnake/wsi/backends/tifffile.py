"""The fast path for TIFF-family slides: compressed tiles read straight from the file and decoded.

It covers Aperio SVS with JPEG or JPEG 2000 tiles, generic tiled TIFF, and
Hamamatsu NDPI where tifffile exposes its JPEG restart intervals as tiles. Tiles
(or strips) are read with ``os.pread`` and decoded by tifffile's page decoder
(imagecodecs), so reads from many threads need no lock. Pixels equal
OpenSlide's (tested); at levels whose downsample is not an integer OpenSlide
interpolates at fractional positions, and there the backends differ slightly.

JPEG tiles can also be decoded at 1/2, 1/4 or 1/8 of their size by libjpeg's DCT-domain
scaling (Pillow's JPEG decoder, which releases the GIL): a level read that way is the level
reduced by that factor, about twice as fast to get as a full decode and a block mean, and within
a few grey levels of the block mean (measured in ``tests/test_slide.py``). A level is read that
way only once one of its tiles, decoded by Pillow at full size, equals tifffile's decode, so
both read the same colour space.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from tifffile import COMPRESSION, PHOTOMETRIC, PLANARCONFIG

#: OpenSlide vendors whose files the fast path may read (TIFF layouts it understands).
FAST_VENDORS = frozenset({"aperio", "generic-tiff", "hamamatsu"})

#: TIFF compressions the fast path decodes.
FAST_COMPRESSIONS = frozenset(
    {
        COMPRESSION.NONE,
        COMPRESSION.LZW,
        COMPRESSION.JPEG,
        COMPRESSION.ADOBE_DEFLATE,
        COMPRESSION.DEFLATE,
        COMPRESSION.APERIO_JP2000_YCBC,
        COMPRESSION.APERIO_JP2000_RGB,
    }
)

#: Reductions libjpeg decodes directly, in the DCT domain.
DCT_FACTORS = (2, 4, 8)

#: Largest tile or strip (pixels) the fast path decodes at once; larger ones go to OpenSlide.
MAX_SEGMENT_PIXELS = 1 << 24


def _c_round(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.floor(np.abs(values) + 0.5)


_CHROMA = np.arange(256, dtype=np.float64) - 128
#: OpenSlide's YCbCr -> RGB tables for Aperio JPEG 2000 (YCbCr), so both readers agree.
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
        and page.planarconfig == PLANARCONFIG.CONTIG
        and page.imagedepth == 1
        and len(page.chunks) == 3
        and page.chunks[0] * page.chunks[1] <= MAX_SEGMENT_PIXELS
        and page.compression in FAST_COMPRESSIONS
        and page.photometric in (PHOTOMETRIC.RGB, PHOTOMETRIC.YCBCR)
    )


def _level_pages(tiff: tifffile.TiffFile, level_dimensions: tuple) -> list | None:
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


def fast_path_supported(path: str | Path, level_dimensions: tuple) -> bool:
    """Whether the tifffile fast path can read every level of a slide.

    Parameters
    ----------
    path : str or Path
        The slide file.
    level_dimensions : sequence of (width, height)
        OpenSlide's levels; each must be one TIFF page of the same size, 8-bit RGB
        or YCbCr, tiled (or in strips of at most ``MAX_SEGMENT_PIXELS``), with a
        compression in ``FAST_COMPRESSIONS``.

    Returns
    -------
    bool
        True when the ``tifffile`` backend can read the slide.
    """
    try:
        with tifffile.TiffFile(path) as tiff:
            return _level_pages(tiff, level_dimensions) is not None
    except (tifffile.TiffFileError, OSError, ValueError):
        return False


class TiffLevels:
    """Pyramid levels of a TIFF-family slide, read by decoding its compressed tiles directly.

    Parameters
    ----------
    path : str
        The slide file.
    level_dimensions : sequence of (width, height)
        The levels OpenSlide reports; each must match one TIFF page.

    Raises
    ------
    ValueError
        When the file's pages do not match the levels or are not supported.
    """

    def __init__(self, path: str, level_dimensions: tuple) -> None:
        self._tiff = tifffile.TiffFile(path)
        try:
            pages = _level_pages(self._tiff, level_dimensions)
            if pages is None:
                msg = "its TIFF levels do not match the recorded levels or are not supported"
                raise ValueError(msg)
            self._pages = pages
            self._decoders = [page.decode for page in pages]
            self._fd = os.open(path, os.O_RDONLY)
            # level -> Pillow's JPEG colour mode that decodes it as tifffile does (None: none does)
            self._jpeg_modes: dict[int, str | None] = {}
        except Exception:
            self._tiff.close()
            raise

    def _tile_bytes(self, level: int, index: int) -> bytes | None:
        """The compressed bytes of one tile (or strip) as stored; None for a tile never written."""
        page = self._pages[level]
        count = page.databytecounts[index]
        return os.pread(self._fd, count, page.dataoffsets[index]) if count else None

    def _jpeg_stream(self, level: int, index: int) -> bytes | None:
        """A JPEG tile as one complete stream (the page's shared tables merged in); None if empty."""
        data, tables = self._tile_bytes(level, index), self._pages[level].jpegtables
        if data is None or tables is None:
            return data
        return tables[:-2] + data[2:]  # one SOI, one EOI

    def _pillow_decode(self, stream: bytes, level: int, factor: int, mode: str) -> np.ndarray:
        """A JPEG tile decoded by Pillow at 1/``factor`` of its size (``mode``: its colour space)."""
        seg_rows, seg_cols = self._pages[level].chunks[:2]
        size = (seg_cols // factor, seg_rows // factor)
        return np.asarray(Image.frombytes("RGB", size, stream, "jpeg", "RGB", mode, factor))

    def _jpeg_mode(self, level: int) -> str | None:
        """Pillow's JPEG colour mode that decodes the level's tiles as tifffile does, or None."""
        if level not in self._jpeg_modes:  # decided once; threads that race decide the same
            self._jpeg_modes[level] = self._probe_jpeg_mode(level)
        return self._jpeg_modes[level]

    def _probe_jpeg_mode(self, level: int) -> str | None:
        page = self._pages[level]
        first = next((i for i, count in enumerate(page.databytecounts) if count), None)
        if page.compression != COMPRESSION.JPEG or page.jpegheader is not None or first is None:
            return None  # NDPI's tiles are restart intervals of one JPEG, not JPEG streams
        stream = self._jpeg_stream(level, first)
        reference = self._segment(level, first, None)
        for mode in ("", "RGB"):  # as its header says (YCbCr), or RGB-coded (Aperio's usual)
            try:
                if np.array_equal(self._pillow_decode(stream, level, 1, mode), reference):
                    return mode
            except Exception:  # any failure means: not this mode
                continue
        return None

    def can_scale(self, level: int, factor: int) -> bool:
        """Whether :meth:`read` can decode the level's tiles reduced ``factor`` times (DCT scaling).

        True for a JPEG level whose tile sides are multiples of ``factor`` (2, 4 or 8) and whose
        tiles Pillow decodes exactly as tifffile does.
        """
        seg_rows, seg_cols = self._pages[level].chunks[:2]
        return (
            factor in DCT_FACTORS
            and seg_rows % factor == 0
            and seg_cols % factor == 0
            and self._jpeg_mode(level) is not None
        )

    def _segment(self, level: int, index: int, cache: dict | None, factor: int = 1) -> np.ndarray | None:
        key = (level, index, factor)
        if cache is not None and key in cache:
            return cache[key]
        page = self._pages[level]
        if factor > 1:
            stream, mode = self._jpeg_stream(level, index), self._jpeg_mode(level)
            segment = None if stream is None else self._pillow_decode(stream, level, factor, mode)
        else:
            segment, _, _ = self._decoders[level](
                self._tile_bytes(level, index), index, jpegtables=page.jpegtables, jpegheader=page.jpegheader
            )
            if segment is not None:
                segment = segment[0]  # (depth, rows, columns, samples) -> (rows, columns, samples)
                if page.compression == COMPRESSION.APERIO_JP2000_YCBC:
                    segment = _ycbcr_to_rgb(segment)
        if cache is not None:
            cache[key] = segment
        return segment

    def read(
        self, level: int, x: int, y: int, width: int, height: int, cache: dict | None, factor: int = 1
    ) -> np.ndarray:
        """Read a region of a level (level pixels), white outside; see :meth:`SlideReader.read_level`.

        With ``factor`` > 1 (only where :meth:`can_scale`), the level reduced ``factor`` times is
        read, its tiles decoded at that scale; ``x``, ``y``, ``width``, ``height`` are in its pixels.
        """
        page = self._pages[level]
        seg_rows, seg_cols = page.chunks[0] // factor, page.chunks[1] // factor
        image_width, image_height = page.imagewidth // factor, page.imagelength // factor
        per_row = -(-page.imagewidth // page.chunks[1])
        left, top = max(x, 0), max(y, 0)
        right, bottom = min(x + width, image_width), min(y + height, image_height)
        first_y, last_y = top // seg_rows, (bottom - 1) // seg_rows
        first_x, last_x = left // seg_cols, (right - 1) // seg_cols
        inside = (left, top, right, bottom) == (x, y, x + width, y + height)
        if inside and first_y == last_y and first_x == last_x:  # within one tile: a read-only view of it
            segment = self._segment(level, first_y * per_row + first_x, cache, factor)
            if segment is not None:
                view = segment[y - first_y * seg_rows :, x - first_x * seg_cols :][:height, :width]
                view.flags.writeable = False
                return view
        out = np.full((height, width, 3), 255, np.uint8)
        if right <= left or bottom <= top:
            return out
        for seg_y in range(first_y, last_y + 1):
            for seg_x in range(first_x, last_x + 1):
                segment = self._segment(level, seg_y * per_row + seg_x, cache, factor)
                if segment is None:  # a tile the scanner never wrote: background
                    continue
                y0, x0 = seg_y * seg_rows, seg_x * seg_cols
                r0, r1 = max(top, y0), min(bottom, y0 + segment.shape[0])
                c0, c1 = max(left, x0), min(right, x0 + segment.shape[1])
                out[r0 - y : r1 - y, c0 - x : c1 - x] = segment[r0 - y0 : r1 - y0, c0 - x0 : c1 - x0]
        return out

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)
        self._tiff.close()
