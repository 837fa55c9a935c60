"""How tile chunks are encoded: Zarr codecs and the matching chunk encoder that releases the GIL.

Importing this module registers the ``imagecodecs_jpeg`` codec, so any process
that opens a ``jpeg`` store through slidesnake decodes it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, get_args

import imagecodecs
import imagecodecs.numcodecs
import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec
from zarr.codecs.numcodecs import _NumcodecsArrayBytesCodec
from zarr.errors import ZarrUserWarning

from ..errors import StudyError
from ..settings import Compressor

#: The chunk encodings of config ``tiling: compressor``.
COMPRESSORS: tuple[str, ...] = get_args(Compressor)


class JpegCodec(_NumcodecsArrayBytesCodec, codec_name="imagecodecs_jpeg"):
    """Zarr v3 array-to-bytes codec storing each (row, column, 3) uint8 chunk as a JPEG image.

    It wraps ``imagecodecs.numcodecs.Jpeg`` with Zarr's numcodecs adapter (zarr
    3.1's ``zarr.codecs.numcodecs``, pinned through the env files and tested by
    reading every compressor back through Zarr); its metadata name is
    ``numcodecs.imagecodecs_jpeg``.
    """

    def __init__(self, **codec_config: Any) -> None:
        with warnings.catch_warnings():  # Zarr warns that numcodecs codecs are outside the v3 spec
            warnings.simplefilter("ignore", ZarrUserWarning)
            super().__init__(**codec_config)


imagecodecs.numcodecs.register_codecs(codecs=["imagecodecs_jpeg"], verbose=False)
zarr.registry.register_codec(JpegCodec.codec_name, JpegCodec)


@dataclass(frozen=True)
class Codec:
    """How tile chunks are stored.

    Attributes
    ----------
    name : str
        The config name (``tiling: compressor``).
    serializer : object
        Zarr's array-to-bytes codec (``"auto"``: raw bytes).
    compressors : tuple
        Zarr's bytes-to-bytes codecs.
    encode : callable
        Encodes one (row, column, 3) uint8 chunk as the codecs above describe
        (a zstd frame, a blosc buffer, raw bytes or a JPEG image), with a codec
        library that releases the GIL.
    decode : callable
        The inverse: the bytes of one stored chunk to its uint8 pixels (flat, or
        (row, column, 3) for JPEG), as Zarr's codecs above decode them.
    lossless : bool
        Whether the stored pixels equal the tiles.
    """

    name: str
    serializer: Any
    compressors: tuple
    encode: Callable[[np.ndarray], bytes]
    decode: Callable[[bytes], np.ndarray]
    lossless: bool


def _raw(tile: np.ndarray) -> bytes:
    return tile.tobytes()


def _pixels(data: bytes) -> np.ndarray:
    return np.frombuffer(data, np.uint8)


def _zstd_decode(data: bytes) -> np.ndarray:
    return _pixels(imagecodecs.zstd_decode(data))


def make_codec(name: Compressor, *, jpeg_quality: int) -> Codec:
    """Return the chunk encoding called ``name`` in the config.

    Parameters
    ----------
    name : {'zstd', 'blosc-lz4', 'none', 'jpeg'}
        ``zstd`` (lossless), ``blosc-lz4`` (lossless, fastest to decode),
        ``none``, or ``jpeg`` (lossy, about 5x smaller than ``zstd`` on H&E).
    jpeg_quality : int
        Quality (1-100) of the ``jpeg`` compressor.

    Returns
    -------
    Codec
        The Zarr codecs and the matching chunk encoder.

    Raises
    ------
    StudyError
        For an unknown name (a config error).
    """
    if name == "zstd":
        encode = partial(imagecodecs.zstd_encode, level=1)
        return Codec(name, "auto", (ZstdCodec(level=1),), encode, _zstd_decode, True)
    if name == "blosc-lz4":
        codec = BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle", typesize=1)
        blosc = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.BITSHUFFLE)
        return Codec(name, "auto", (codec,), blosc.encode, lambda data: _pixels(blosc.decode(data)), True)
    if name == "none":
        return Codec(name, "auto", (), _raw, _pixels, True)
    if name == "jpeg":
        quality = int(jpeg_quality)
        jpeg = imagecodecs.numcodecs.Jpeg(level=quality)  # what JpegCodec(level=quality) runs
        return Codec(name, JpegCodec(level=quality), (), jpeg.encode, jpeg.decode, False)
    msg = f"config 'tiling: compressor' = {name!r}; choose one of {list(COMPRESSORS)}"
    raise StudyError(msg)
