"""Checksums of files and of pixels, for provenance and the leakage check."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 22) -> str:
    """Return the SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def pixel_hash(pixels: np.ndarray) -> int:
    """A signed 64-bit hash (BLAKE2b) of an image's pixels: equal for identical pixels, whatever their source.

    Tiles of two slides, or two images in different file formats, hash equal
    when their decoded pixels are equal.

    Parameters
    ----------
    pixels : numpy.ndarray
        (row, column, channel) uint8 pixels.

    Returns
    -------
    int
        The hash, as a signed 64-bit integer (it fits an int64 column).
    """
    digest = hashlib.blake2b(np.ascontiguousarray(pixels).tobytes(), digest_size=8)
    return int.from_bytes(digest.digest(), "little", signed=True)
