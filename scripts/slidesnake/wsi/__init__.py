"""Whole-slide images: what a file is (:class:`SlideInfo`), how it is tiled (:class:`TilePlan`), reading.

Coordinates: ``x``/``y`` are columns/rows in level-0 pixels unless a name says
otherwise (``level`` pixels, ``target`` pixels); arrays are (row, column, channel).
Pixels outside the slide read as white, like OpenSlide's transparent pixels
flattened onto white.
"""

from .info import SlideInfo
from .probe import read_slide_info
from .reader import READERS, SlideReader
from .resolution import TilePlan, choose_level, plan_tiling, resolve_mpp

__all__ = [
    "READERS",
    "SlideInfo",
    "SlideReader",
    "TilePlan",
    "choose_level",
    "plan_tiling",
    "read_slide_info",
    "resolve_mpp",
]
