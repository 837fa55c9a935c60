"""Area-averaging resampling of RGB regions."""

from __future__ import annotations

import numpy as np
from PIL import Image

#: Reductions done in NumPy by :func:`reduce_power_of_two` (block sums fit 16 bits).
POWER_OF_TWO_FACTORS = (2, 4, 8, 16)


def _halve_sum(sums: np.ndarray) -> np.ndarray:
    """Sum each 2 x 2 block of a (row, column, channel) uint16 image of even sides."""
    rows, cols, channels = sums.shape
    pairs = sums.reshape(rows // 2, 2, cols // 2, 2 * channels)  # rows paired; two pixels side by side
    vertical = pairs[:, 0] + pairs[:, 1]
    return vertical[..., :channels] + vertical[..., channels:]


def reduce_power_of_two(region: np.ndarray, factor: int) -> np.ndarray:
    """The rounded mean of each ``factor`` x ``factor`` block, for a factor of 2, 4, 8 or 16.

    Equal to Pillow's ``Image.reduce`` (whose division by a power of two is exact),
    but in NumPy, which releases the GIL: Pillow's reduce, with its copies in and
    out, holds it, so tiling threads that reduce tiles ran one at a time.

    Parameters
    ----------
    region : numpy.ndarray
        (row, column, channel) uint8, both sides multiples of ``factor``.
    factor : int
        A power of two, at most 16 (block sums fit 16 bits).

    Returns
    -------
    numpy.ndarray
        (row / factor, column / factor, channel) uint8.
    """
    shift = factor.bit_length() - 1
    if factor not in POWER_OF_TWO_FACTORS or region.shape[0] % factor or region.shape[1] % factor:
        msg = f"factor {factor} is not 2, 4, 8 or 16, or does not divide the region {region.shape[:2]}"
        raise ValueError(msg)
    sums = _halve_sum(region.astype(np.uint16))
    for _ in range(shift - 1):
        sums = _halve_sum(sums)
    sums += factor * factor // 2
    sums >>= 2 * shift
    return sums.astype(np.uint8)


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
        is the rounded mean of each block (:func:`reduce_power_of_two` for 2, 4, 8
        and 16, else ``Image.reduce``, which equals it); other factors use Pillow's
        box filter.
    """
    rows, cols = region.shape[:2]
    if box == (0, 0, cols, rows):
        if (rows, cols) == (height, width):
            return region
        factor = cols // width
        if factor > 1 and (rows, cols) == (height * factor, width * factor):
            if factor in POWER_OF_TWO_FACTORS:
                return reduce_power_of_two(region, factor)
            return np.asarray(Image.fromarray(region).reduce(factor))
    image = Image.fromarray(region).resize((width, height), Image.Resampling.BOX, box=box)
    return np.asarray(image)
