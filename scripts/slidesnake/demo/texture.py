"""Procedural H&E texture of the demo slides: noise fields, nucleus stamps and their painting."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

#: The texture is generated at this resolution, then upsampled to level 0.
GEN_MPP = 0.5
#: Background brightness of the glass.
BACKGROUND = 240.0


def lowpass_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Gaussian-filtered white noise (features about `scale` pixels), zero mean, unit std."""
    h, w = shape
    spec = np.fft.rfft2(rng.standard_normal((h, w)).astype(np.float32))
    fy = np.fft.fftfreq(h).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(w).astype(np.float32)[None, :]
    spec *= np.exp(-(fx**2 + fy**2) * (2.0 * scale) ** 2)
    field = np.fft.irfft2(spec, s=(h, w)).astype(np.float32)
    field -= field.mean()
    field /= field.std() + 1e-12
    return field


def fibre_noise(
    rng: np.random.Generator, shape: tuple[int, int], angle: float, along: float, across: float
) -> np.ndarray:
    """Anisotropic low-pass noise: streaks along `angle` (radians, x towards y), unit std."""
    h, w = shape
    spec = np.fft.rfft2(rng.standard_normal((h, w)).astype(np.float32))
    fy = np.fft.fftfreq(h).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(w).astype(np.float32)[None, :]
    f_along = fx * math.cos(angle) + fy * math.sin(angle)
    f_across = -fx * math.sin(angle) + fy * math.cos(angle)
    spec *= np.exp(-2.0 * math.pi**2 * ((f_along * along) ** 2 + (f_across * across) ** 2))
    field = np.fft.irfft2(spec, s=(h, w)).astype(np.float32)
    field -= field.mean()
    field /= field.std() + 1e-12
    return field


#: The kinds of nuclei, each as ranges of its shape: semi-axes a (long) and b/a (generated pixels),
#: wobble of the outline, chromatin texture, chance of a nucleolus, darkness, and whether vesicular
#: (chromatin at the rim, a pale centre: the demo trait).
NUCLEUS_KINDS: dict[str, dict] = {
    "fibroblast": {
        "a": (4.5, 7.5),
        "b_ratio": (0.25, 0.4),
        "wobble": 0.04,
        "chromatin": 0.0,
        "nucleolus": 0.0,
        "intensity": (0.45, 0.65),
        "vesicular": False,
    },
    "lymphocyte": {
        "a": (3.2, 4.2),
        "b_ratio": (0.85, 1.0),
        "wobble": 0.05,
        "chromatin": 0.2,
        "nucleolus": 0.0,
        "intensity": (1.3, 1.7),
        "vesicular": False,
    },
    "epithelial": {
        "a": (5.0, 6.5),
        "b_ratio": (0.4, 0.55),
        "wobble": 0.06,
        "chromatin": 0.15,
        "nucleolus": 0.1,
        "intensity": (0.75, 1.0),
        "vesicular": False,
    },
    "tumor_low": {
        "a": (4.8, 7.0),
        "b_ratio": (0.65, 0.95),
        "wobble": 0.1,
        "chromatin": 0.2,
        "nucleolus": 0.2,
        "intensity": (0.75, 1.05),
        "vesicular": False,
    },
    "tumor": {
        "a": (6.0, 10.0),
        "b_ratio": (0.6, 0.95),
        "wobble": 0.18,
        "chromatin": 0.3,
        "nucleolus": 0.45,
        "intensity": (0.95, 1.35),
        "vesicular": False,
    },
    "tumor_vesicular": {
        "a": (9.0, 13.0),
        "b_ratio": (0.75, 0.95),
        "wobble": 0.12,
        "chromatin": 0.2,
        "nucleolus": 1.0,
        "intensity": (1.0, 1.25),
        "vesicular": True,
    },
}


def _nucleus_stamp(rng: np.random.Generator, kind: dict, angle: float) -> np.ndarray:
    """One nucleus of `kind` (a :data:`NUCLEUS_KINDS` entry): hematoxylin density, long axis at `angle`."""
    a = rng.uniform(*kind["a"])
    b = a * rng.uniform(*kind["b_ratio"])
    radius = int(math.ceil(a * 1.5)) + 2
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float32)
    ca, sa = math.cos(angle), math.sin(angle)
    u = xx * ca + yy * sa
    v = -xx * sa + yy * ca
    phi = np.arctan2(v / b, u / a)
    wobble = kind["wobble"] * rng.uniform(0.6, 1.2)
    shape = 1.0 + sum(
        wobble * rng.uniform(0.3, 1.0) / (k - 1) * np.cos(k * phi + rng.uniform(0, 2 * math.pi))
        for k in range(2, 6)
    )
    rho = np.hypot(u / a, v / b) / shape
    prof = 1.0 / (1.0 + np.exp((rho - 1.0) * (1.8 * min(a, b))))
    chromatin = kind["chromatin"]
    if chromatin > 0:
        tex = ndimage.gaussian_filter(rng.standard_normal(prof.shape).astype(np.float32), 0.9)
        tex /= tex.std() + 1e-12
        prof *= 1.0 + chromatin * tex + 0.25 * chromatin * np.clip(rho, 0, 1) ** 4  # rim
    if kind["vesicular"]:
        prof *= 0.22 + 1.15 * np.clip(rho, 0, 1) ** 3  # chromatin at the membrane, a clear centre
    if rng.random() < kind["nucleolus"]:
        oy, ox = rng.uniform(-0.3, 0.3, 2) * b
        size = 1.6 if kind["vesicular"] else 1.0
        prof += (
            (1.1 if kind["vesicular"] else 0.7)
            * np.exp(-((yy - oy) ** 2 + (xx - ox) ** 2) / (2 * size**2))
            * (rho < 1)
        )
    return np.clip(prof * rng.uniform(*kind["intensity"]), 0.0, None).astype(np.float32)


#: Orientations a stamp bank covers (over 180 degrees) and stamps per orientation.
ANGLE_BINS = 12
VARIANTS = 6


def stamp_bank(rng: np.random.Generator, kind: str) -> list[np.ndarray]:
    """Stamps of `kind`: stamp ``bin * VARIANTS + variant`` lies near ``bin * 180 / ANGLE_BINS`` degrees."""
    spec = NUCLEUS_KINDS[kind]
    return [
        _nucleus_stamp(rng, spec, (i + rng.uniform(-0.5, 0.5)) * math.pi / ANGLE_BINS)
        for i in range(ANGLE_BINS)
        for _ in range(VARIANTS)
    ]


def stamp_ids(rng: np.random.Generator, angles: np.ndarray | None, n: int) -> np.ndarray:
    """Stamp indices into a :func:`stamp_bank` for `n` nuclei: along `angles` (radians), or at random."""
    if angles is None:
        return rng.integers(0, ANGLE_BINS * VARIANTS, n)
    bins = np.rint(np.asarray(angles) / math.pi * ANGLE_BINS).astype(np.int64) % ANGLE_BINS
    return bins * VARIANTS + rng.integers(0, VARIANTS, n)


def paint_nuclei(
    shape: tuple[int, int], ys: np.ndarray, xs: np.ndarray, ids: np.ndarray, stamps: list[np.ndarray]
) -> np.ndarray:
    """Sum of stamps[ids[i]] centred at (ys[i], xs[i]) on a zero image of `shape` (float32).

    Centres closer to the border than a stamp's radius are dropped.
    """
    h, w = shape
    index_parts, weight_parts = [], []
    ys, xs = np.asarray(ys, np.int64), np.asarray(xs, np.int64)
    for k, stamp in enumerate(stamps):
        r = stamp.shape[0] // 2
        take = (ids == k) & (ys >= r) & (ys < h - r) & (xs >= r) & (xs < w - r)
        if not take.any():
            continue
        centres = ys[take] * w + xs[take]
        dy, dx = np.nonzero(stamp > 0.01)
        offsets = (dy - r) * w + (dx - r)
        index_parts.append((centres[:, None] + offsets[None, :]).ravel())
        weight_parts.append(np.tile(stamp[dy, dx], centres.size))
    if not index_parts:
        return np.zeros(shape, np.float32)
    total = np.bincount(np.concatenate(index_parts), np.concatenate(weight_parts), minlength=h * w)
    return total.reshape(shape).astype(np.float32)


def place(rng: np.random.Generator, mask: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Poisson points, one per spacing**2 pixels, kept where `mask` is True: (rows, columns)."""
    h, w = mask.shape
    n = int(rng.poisson(h * w / spacing**2))
    ys = rng.integers(0, h, n)
    xs = rng.integers(0, w, n)
    keep = mask[ys, xs]
    return ys[keep], xs[keep]
