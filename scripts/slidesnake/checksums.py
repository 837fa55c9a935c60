"""Checksums of files and of pixels, for provenance and the leakage check."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import xxhash


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 22) -> str:
    """Return the SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def pixel_hash(pixels: np.ndarray) -> int:
    """A signed 64-bit hash (XXH3) of an image's pixels: equal for identical pixels, whatever their source.

    Tiles of two slides, or two images in different file formats, hash equal
    when their decoded pixels are equal. XXH3 is not cryptographic but about 50x
    faster than BLAKE2b (measured: 3 us against 145 us a 128 px tile; BLAKE2b was a
    tenth of tiling's time); it finds duplicates, it does not guard against forgery.

    Parameters
    ----------
    pixels : numpy.ndarray
        (row, column, channel) uint8 pixels.

    Returns
    -------
    int
        The hash, as a signed 64-bit integer (it fits an int64 column).
    """
    unsigned = xxhash.xxh3_64_intdigest(np.ascontiguousarray(pixels).data)
    return unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned
