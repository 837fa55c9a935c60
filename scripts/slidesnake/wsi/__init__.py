"""Whole-slide images: what a file is (:class:`SlideInfo`), how it is tiled (:class:`TilePlan`). The face
exports that read side only; reading slides (``wsi.reader``, ``wsi.probe``, the backends) is imported from
its modules, so code that only plans or describes tiles never loads OpenSlide.

Coordinates: ``x``/``y`` are columns/rows in level-0 pixels unless a name says
otherwise (``level`` pixels, ``target`` pixels); arrays are (row, column, channel).
Pixels outside the slide read as white, like OpenSlide's transparent pixels
flattened onto white.
"""

from .info import SlideInfo
from .resolution import TilePlan, choose_level, plan_tiling, resolve_mpp

__all__ = ["SlideInfo", "TilePlan", "choose_level", "plan_tiling", "resolve_mpp"]
