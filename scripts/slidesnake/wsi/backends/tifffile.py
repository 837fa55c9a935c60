"""The fast path for TIFF-family slides: compressed tiles read straight from the file and decoded.

It covers Aperio SVS with JPEG or JPEG 2000 tiles, generic tiled TIFF, and
Hamamatsu NDPI where tifffile exposes its JPEG restart intervals as tiles. Tiles
(or strips) are read with ``os.pread`` and decoded by tifffile's page decoder
(imagecodecs), so reads from many threads need no lock. Pixels equal
OpenSlide's (tested); at levels whose downsample is not an integer OpenSlide
interpolates at fractional positions, and there the backends differ slightly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile
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
            if page.compression == COMPRESSION.APERIO_JP2000_YCBC:
                segment = _ycbcr_to_rgb(segment)
        if cache is not None:
            cache[key] = segment
        return segment

    def read(self, level: int, x: int, y: int, width: int, height: int, cache: dict | None) -> np.ndarray:
        """Read a region of a level (level pixels), white outside; see :meth:`SlideReader.read_level`."""
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
        """Close the file."""
        os.close(self._fd)
        self._tiff.close()
