"""The OpenSlide backend: every format OpenSlide reads, one handle per thread."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import openslide

from ...errors import SlideError


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


def to_rgb(region: np.ndarray) -> np.ndarray:
    """Flatten an RGBA OpenSlide region onto white and return (row, column, 3) uint8."""
    rgba = np.asarray(region)
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgb)
    alpha = alpha.astype(np.uint16)
    return ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


class OpenSlideLevels:
    """Pyramid levels read with OpenSlide ``read_region``, one handle per thread.

    Parameters
    ----------
    path : str
        The slide file.
    slide_id : str
        For error messages.
    level_downsamples : sequence of float
        Level-0 pixels per level pixel, per level.
    """

    def __init__(self, path: str, slide_id: str, level_downsamples: tuple[float, ...]) -> None:
        self._path, self._slide_id = path, slide_id
        self._downsamples = level_downsamples
        self._local = threading.local()
        self._handles: list[openslide.OpenSlide] = []
        self._lock = threading.Lock()

    def _slide(self) -> openslide.OpenSlide:
        slide = getattr(self._local, "slide", None)
        if slide is None:
            slide = open_slide(self._path, self._slide_id)
            self._local.slide = slide
            with self._lock:
                self._handles.append(slide)
        return slide

    def read(self, level: int, x: int, y: int, width: int, height: int, cache: dict | None) -> np.ndarray:
        """Read a region of a level (level pixels); ``cache`` is unused."""
        downsample = self._downsamples[level]
        region = self._slide().read_region(
            (round(x * downsample), round(y * downsample)), level, (width, height)
        )
        return to_rgb(region)

    def close(self) -> None:
        """Close every thread's handle."""
        with self._lock:
            for slide in self._handles:
                slide.close()
            self._handles.clear()
        self._local = threading.local()
