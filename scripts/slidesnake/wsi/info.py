"""What a slide file is: :class:`SlideInfo` (see :func:`slidesnake.wsi.read_slide_info`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Reader = Literal["tifffile", "openslide"]


@dataclass(frozen=True, kw_only=True)
class SlideInfo:
    """The facts of one slide file (how it is tiled is a :class:`~slidesnake.wsi.TilePlan`).

    Attributes
    ----------
    slide_id, path : str
        The sheet's id and the file.
    vendor : str
        OpenSlide's vendor name (``aperio``, ``generic-tiff``, ...).
    width, height : int
        Level-0 size in pixels.
    level_dimensions : tuple of (width, height)
        Size of every pyramid level in pixels.
    level_downsamples : tuple of float
        Level-0 pixels per level pixel, per level.
    mpp_x, mpp_y : float
        Level-0 microns per pixel used by slidesnake.
    mpp_source : str
        Where the MPP came from: ``slide``, ``sheet`` or ``config``.
    objective_power : float or None
        The scan's nominal objective magnification, if the file records one.
    associated_images : tuple of str
        Names of the label, macro and thumbnail images the file carries.
    sha256 : str
        Checksum of the slide file, for provenance and duplicate detection.
    reader : {'tifffile', 'openslide'}
        The backend that reads its pixels (``tifffile`` is the fast path).
    """

    slide_id: str
    path: str
    vendor: str
    width: int
    height: int
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]
    mpp_x: float
    mpp_y: float
    mpp_source: str
    objective_power: float | None
    associated_images: tuple[str, ...]
    sha256: str
    reader: Reader

    def to_dict(self) -> dict:
        """Return the fields as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SlideInfo:
        """Rebuild a :class:`SlideInfo` from :meth:`to_dict` output."""
        values = {field.name: data[field.name] for field in dataclasses.fields(cls)}
        values["level_dimensions"] = tuple(tuple(d) for d in values["level_dimensions"])
        values["level_downsamples"] = tuple(values["level_downsamples"])
        values["associated_images"] = tuple(values["associated_images"])
        return cls(**values)
