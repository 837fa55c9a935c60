"""What a slide file is: :class:`SlideInfo` (see :func:`slidesnake.wsi.read_slide_info`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Reader = Literal["tifffile", "openslide"]
Status = Literal["ok", "excluded"]


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
    status : {'ok', 'excluded'}
        ``excluded``: the slide cannot be used (``reason`` says why); it is carried through the
        workflow with empty outputs (config ``on_bad_slide: skip``).
    reason : str
        Why it is excluded; empty otherwise.
    file_mpp : float or None
        Level-0 microns per pixel (x) that the file itself records, whatever ``mpp_source`` is;
        None when it records none. Facts written before this field existed read as None.
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
    status: Status
    reason: str
    file_mpp: float | None = None

    @classmethod
    def excluded(cls, slide_id: str, path: str | Path, reason: str, sha256: str = "") -> SlideInfo:
        """The facts of a slide that cannot be used: none but its file's checksum, and why."""
        return cls(
            slide_id=slide_id,
            path=str(path),
            vendor="unknown",
            width=0,
            height=0,
            level_dimensions=(),
            level_downsamples=(),
            mpp_x=0.0,
            mpp_y=0.0,
            mpp_source="none",
            objective_power=None,
            associated_images=(),
            sha256=sha256,
            reader="openslide",
            status="excluded",
            reason=reason,
        )

    def to_dict(self) -> dict:
        """Return the fields as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SlideInfo:
        """Rebuild a :class:`SlideInfo` from :meth:`to_dict` output (fields with a default may be absent)."""
        values = {
            field.name: data[field.name]
            for field in dataclasses.fields(cls)
            if field.name in data or field.default is dataclasses.MISSING
        }
        values["level_dimensions"] = tuple(tuple(d) for d in values["level_dimensions"])
        values["level_downsamples"] = tuple(values["level_downsamples"])
        values["associated_images"] = tuple(values["associated_images"])
        return cls(**values)
