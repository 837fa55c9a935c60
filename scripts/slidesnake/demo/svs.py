"""The one writer of test and demo slides: Aperio SVS or generic tiled TIFF, with pyramid and thumbnail.

It covers what the demo study and the tests need: JPEG and JPEG 2000 (YCbCr or
RGB) Aperio SVS, a pyramid of 4x levels and an Aperio thumbnail, single-level
slides written tile by tile from a generator (never whole in memory), generic
TIFFs with or without a resolution tag, deflate, and RGBA. OpenSlide opens
every file it writes (tested).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import imagecodecs
import numpy as np
import tifffile
from PIL import Image
from tifffile import COMPRESSION

from ..io import atomic_path

SlideCompression = Literal["jpeg", "jpeg2000-ycbcr", "jpeg2000-rgb", "deflate", "none"]
APERIO_HEAD = "Aperio Image Library v12.0.15 \r\n"
#: The codec names Aperio writes in its ImageDescription.
_APERIO_CODEC = {
    "jpeg": "JPEG/RGB",
    "jpeg2000-ycbcr": "J2K/YUV16",
    "jpeg2000-rgb": "J2K/KDU",
    "deflate": "DEFLATE/RGB",
    "none": "RAW/RGB",
}
#: Pyramid levels are made until the smaller side is at most this.
PYRAMID_MIN_SIDE = 512
#: Long side of the Aperio thumbnail at most.
THUMB_MAX = 768


def _downsample4(a: np.ndarray) -> np.ndarray:
    """Area-average by 4 in both directions (edges padded by replication)."""
    h, w = a.shape[:2]
    ph, pw = -h % 4, -w % 4
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="edge")
    h, w = a.shape[:2]
    rows = a[0::4].astype(np.uint16)
    for i in range(1, 4):
        rows += a[i::4]
    cols = rows.reshape(h // 4, w // 4, 4, a.shape[2])
    total = cols[:, :, 0] + cols[:, :, 1] + cols[:, :, 2] + cols[:, :, 3]
    return ((total + 8) >> 4).astype(np.uint8)


def _thumbnail(levels: list[np.ndarray]) -> np.ndarray:
    """A thumbnail at most THUMB_MAX px on its long side, area-averaged from a pyramid level."""
    src = levels[0]
    for lv in levels:
        if max(lv.shape[:2]) >= THUMB_MAX:
            src = lv
    f = -(-max(src.shape[:2]) // THUMB_MAX)
    if f == 1:
        return np.ascontiguousarray(src)
    h, w = src.shape[:2]
    ph, pw = -h % f, -w % f
    padded = np.pad(src, ((0, ph), (0, pw), (0, 0)), mode="edge")
    v = padded.reshape((h + ph) // f, f, (w + pw) // f, f, src.shape[2]).astype(np.uint32)
    return ((v.sum(axis=(1, 3)) + f * f // 2) // (f * f)).astype(np.uint8)


def _jpeg2000_tiles(image: np.ndarray, tile: int, ycbcr: bool) -> Iterator[bytes]:
    """Each tile of ``image`` (padded with white) as a JPEG 2000 codestream, in YCbCr or RGB."""
    height, width = image.shape[:2]
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            block = np.full((tile, tile, 3), 255, np.uint8)
            part = image[y : y + tile, x : x + tile]
            block[: part.shape[0], : part.shape[1]] = part
            if ycbcr:
                block = np.asarray(Image.fromarray(block).convert("YCbCr"))
            yield imagecodecs.jpeg2k_encode(block, level=40, codecformat="J2K", mct=False)


def _page_options(compression: SlideCompression, quality: int) -> dict[str, Any]:
    if compression == "jpeg":
        return {"compression": "jpeg", "compressionargs": {"level": quality}}
    if compression == "jpeg2000-ycbcr":
        return {"compression": COMPRESSION.APERIO_JP2000_YCBC}
    if compression == "jpeg2000-rgb":
        return {"compression": COMPRESSION.APERIO_JP2000_RGB}
    if compression == "deflate":
        return {"compression": "zlib"}
    return {}


def write_slide(
    path: str | Path,
    image: np.ndarray | None = None,
    *,
    tiles: Iterable[np.ndarray] | None = None,
    shape: tuple[int, int, int] | None = None,
    mpp: float | None,
    vendor: Literal["aperio", "generic"] = "aperio",
    compression: SlideCompression = "jpeg",
    quality: int = 85,
    tile: int = 256,
    pyramid: bool = True,
    thumbnail: bool = True,
    aperio_fields: Mapping[str, Any] | None = None,
) -> None:
    """Write a slide file, atomically.

    Parameters
    ----------
    path : str or Path
        The file to write.
    image : numpy.ndarray, optional
        (row, column, 3 or 4) uint8 level-0 pixels (4: RGBA, written with unassociated alpha).
    tiles, shape : optional
        Instead of ``image``: the level-0 tiles in row-major order and the image's
        shape, for slides too large to hold (no pyramid, no thumbnail then).
    mpp : float or None
        Level-0 microns per pixel: in the Aperio description, or a generic TIFF's
        resolution tag; None writes no resolution.
    vendor : {'aperio', 'generic'}
        An Aperio SVS (ImageDescription OpenSlide recognises) or a generic tiled TIFF.
    compression : {'jpeg', 'jpeg2000-ycbcr', 'jpeg2000-rgb', 'deflate', 'none'}
        Tile compression (JPEG 2000 as Aperio's compressions 33003 and 33005).
    quality : int
        JPEG quality.
    tile : int
        Tile side.
    pyramid, thumbnail : bool
        Add levels downsampled by 4 (until the smaller side is at most 512) and,
        for Aperio, the thumbnail image.
    aperio_fields : Mapping, optional
        The ``key = value`` fields of the Aperio description after its header
        (default: ``AppMag = 20`` and ``MPP``).
    """
    if image is None:
        if tiles is None or shape is None:
            msg = "write_slide needs an image, or tiles and their shape"
            raise ValueError(msg)
        levels: list[Any] = [tiles]
        height, width = shape[:2]
        pyramid = thumbnail = False
    else:
        height, width = image.shape[:2]
        shape = image.shape
        levels = [image]
        while pyramid and min(levels[-1].shape[:2]) > PYRAMID_MIN_SIDE:
            levels.append(_downsample4(levels[-1]))
    options = {"photometric": "rgb", "metadata": None, **_page_options(compression, quality)}
    if shape[2] == 4:
        options["extrasamples"] = ["unassalpha"]
    head = f"{APERIO_HEAD}{width}x{height} [0,0 {width}x{height}] ({tile}x{tile})"
    if aperio_fields is None:
        aperio_fields = {"AppMag": 20, **({"MPP": f"{mpp:.4f}"} if mpp else {})}
    fields = "".join(f"|{key} = {value}" for key, value in aperio_fields.items())
    codec = f"{_APERIO_CODEC[compression]} Q={quality}"

    def pixels(level: Any) -> Any:
        if compression.startswith("jpeg2000") and isinstance(level, np.ndarray):
            return _jpeg2000_tiles(level, tile, compression == "jpeg2000-ycbcr")
        return level

    def level_options(level: Any, first: bool) -> dict[str, Any]:
        size = {"shape": shape, "dtype": "uint8"} if not isinstance(level, np.ndarray) else {}
        if compression.startswith("jpeg2000"):
            size = {"shape": level.shape, "dtype": "uint8"}
        if vendor == "generic":
            resolution = {}
            if mpp and first:
                resolution = {"resolution": (1e4 / mpp, 1e4 / mpp), "resolutionunit": "CENTIMETER"}
            return {**size, **resolution, "subfiletype": 0 if first else 1}
        if first:
            return {**size, "description": f"{head} {codec}{fields}"}
        return {**size, "description": f"{head} -> {level.shape[1]}x{level.shape[0]} {codec}"}

    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=False) as writer:
        writer.write(pixels(levels[0]), tile=(tile, tile), **options, **level_options(levels[0], True))
        if thumbnail and vendor == "aperio":
            thumb = _thumbnail(levels)
            th, tw = thumb.shape[:2]
            jpeg = {**options, **_page_options("jpeg", quality)}
            writer.write(
                thumb, rowsperstrip=16, description=f"{APERIO_HEAD}{width}x{height} -> {tw}x{th} - ", **jpeg
            )
        for level in levels[1:]:
            writer.write(pixels(level), tile=(tile, tile), **options, **level_options(level, False))
