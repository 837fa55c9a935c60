"""Area-averaging resampling of RGB regions."""

from __future__ import annotations

import numpy as np
from PIL import Image


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
