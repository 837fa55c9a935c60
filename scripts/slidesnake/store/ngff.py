"""OME-NGFF 0.5 metadata of a tile store, so viewers (napari-ome-zarr, ome-zarr-py) open it."""

from __future__ import annotations


def ngff_attributes(*, name: str, array_path: str, pixel_um: float) -> dict:
    """The group attribute ``ome`` of a tile store.

    ``multiscales`` has one resolution level, the array ``array_path``, with axes
    ``y`` and ``x`` in micrometres (scale: the tile MPP) and the channel axis
    ``c`` last; ``omero`` shows the three channels as red, green and blue.
    NGFF asks for the channel axis before the spatial ones. slidesnake keeps
    (row, column, channel) so that a chunk is one interleaved RGB tile (what
    the JPEG codec, the models and every reader of the tiles want) and accepts
    this one deviation: napari-ome-zarr (0.10, napari 0.9) and ome-zarr-py's
    reader open the store as three additive colour layers with the right pixel
    size. Validators that check the axis order reject it.

    Parameters
    ----------
    name : str
        The image's name (the slide id).
    array_path : str
        The image array inside the group.
    pixel_um : float
        Microns per pixel of the array.

    Returns
    -------
    dict
        The value of the group attribute ``ome``.
    """
    channels = [
        {
            "label": label,
            "color": color,
            "active": True,
            "window": {"min": 0, "max": 255, "start": 0, "end": 255},
        }
        for label, color in (("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF"))
    ]
    axes = [
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
        {"name": "c", "type": "channel"},
    ]
    scale = {"type": "scale", "scale": [pixel_um, pixel_um, 1.0]}
    multiscale = {
        "name": name,
        "axes": axes,
        "datasets": [{"path": array_path, "coordinateTransformations": [scale]}],
    }
    return {
        "version": "0.5",
        "multiscales": [multiscale],
        "omero": {"version": "0.5", "rdefs": {"model": "color"}, "channels": channels},
    }
