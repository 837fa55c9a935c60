"""Procedural H&E texture of the demo slides: noise fields, nuclei stamps, the stained image."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

#: The texture is generated at this resolution, then upsampled to level 0.
GEN_MPP = 0.5
#: Background brightness of the glass.
BACKGROUND = 240.0
#: Nests of tumor nuclei are planned on a grid of this many generated pixels.
NEST_GRID = 4


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


def _fibre_noise(
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


def _nucleus_stamp(
    rng: np.random.Generator,
    a: float,
    b: float,
    angle: float,
    wobble: float,
    chromatin: float,
    nucleolus: bool,
    intensity: float,
    radius: int,
) -> np.ndarray:
    """One nucleus as a hematoxylin-density stamp of shape (2*radius+1, 2*radius+1)."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float32)
    ca, sa = math.cos(angle), math.sin(angle)
    u = xx * ca + yy * sa
    v = -xx * sa + yy * ca
    phi = np.arctan2(v / b, u / a)
    shape = 1.0 + sum(
        wobble * rng.uniform(0.3, 1.0) / (k - 1) * np.cos(k * phi + rng.uniform(0, 2 * math.pi))
        for k in range(2, 6)
    )
    rho = np.hypot(u / a, v / b) / shape
    prof = 1.0 / (1.0 + np.exp((rho - 1.0) * (1.8 * min(a, b))))
    if chromatin > 0:
        tex = ndimage.gaussian_filter(rng.standard_normal(prof.shape).astype(np.float32), 0.9)
        tex /= tex.std() + 1e-12
        prof *= 1.0 + chromatin * tex + 0.25 * chromatin * np.clip(rho, 0, 1) ** 4  # rim
    if nucleolus:
        oy, ox = rng.uniform(-0.35, 0.35, 2) * b
        prof += 0.7 * np.exp(-((yy - oy) ** 2 + (xx - ox) ** 2) / (2 * 1.0**2)) * (rho < 1)
    return np.clip(prof * intensity, 0.0, None).astype(np.float32)


def _stamp_bank(
    rng: np.random.Generator, tumor: bool, n_angles: int, variants: int
) -> list[list[np.ndarray]]:
    """Nucleus stamps, indexed [orientation bin][variant]."""
    radius = 15 if tumor else 11
    bank = []
    for i in range(n_angles):
        row = []
        for _ in range(variants):
            angle = (i + rng.uniform(-0.5, 0.5)) * math.pi / n_angles
            if tumor:
                a = rng.uniform(6.0, 10.0)
                b = a * rng.uniform(0.6, 0.95)
                stamp = _nucleus_stamp(
                    rng,
                    a,
                    b,
                    angle,
                    wobble=rng.uniform(0.1, 0.22),
                    chromatin=0.3,
                    nucleolus=bool(rng.random() < 0.45),
                    intensity=rng.uniform(0.95, 1.35),
                    radius=radius,
                )
            else:
                a = rng.uniform(4.5, 7.5)
                b = rng.uniform(1.5, 2.4)
                stamp = _nucleus_stamp(
                    rng,
                    a,
                    b,
                    angle,
                    wobble=0.04,
                    chromatin=0.0,
                    nucleolus=False,
                    intensity=rng.uniform(0.45, 0.65),
                    radius=radius,
                )
            row.append(stamp)
        bank.append(row)
    return bank


def _paint_nuclei(
    shape: tuple[int, int], ys: np.ndarray, xs: np.ndarray, ids: np.ndarray, stamps: list[np.ndarray]
) -> np.ndarray:
    """Sum of stamps[ids[i]] centred at (ys[i], xs[i]) on a zero image of `shape` (float32)."""
    h, w = shape
    index_parts, weight_parts = [], []
    centres = ys.astype(np.int64) * w + xs.astype(np.int64)
    for k, stamp in enumerate(stamps):
        sel = centres[ids == k]
        if not sel.size:
            continue
        r = stamp.shape[0] // 2
        dy, dx = np.nonzero(stamp > 0.01)
        offsets = (dy - r) * w + (dx - r)
        index_parts.append((sel[:, None] + offsets[None, :]).ravel())
        weight_parts.append(np.tile(stamp[dy, dx], sel.size))
    if not index_parts:
        return np.zeros(shape, np.float32)
    total = np.bincount(np.concatenate(index_parts), np.concatenate(weight_parts), minlength=h * w)
    return total.reshape(shape).astype(np.float32)


def _place(rng: np.random.Generator, mask: np.ndarray, spacing: float, border: int) -> tuple[np.ndarray, ...]:
    """Poisson points with one point per spacing**2 pixels, kept where `mask` is True."""
    h, w = mask.shape
    n = int(rng.poisson(h * w / spacing**2))
    ys = rng.integers(border, h - border, n)
    xs = rng.integers(border, w - border, n)
    keep = mask[ys, xs]
    return ys[keep], xs[keep]


def render(rng: np.random.Generator, spec: dict, alpha: np.ndarray, tumor: np.ndarray) -> np.ndarray:
    """RGB uint8 image at GEN_MPP from a soft tissue mask `alpha` and a boolean tumor mask."""
    h, w = alpha.shape
    tissue = alpha > 0.5
    normal = tissue & ~tumor

    # stroma fibres: two streak directions blended by a smooth weight, made at half resolution
    hh, hw = (h + 1) // 2, (w + 1) // 2
    a1 = rng.uniform(0, math.pi)
    a2 = a1 + rng.uniform(0.6, 1.2) * rng.choice([-1.0, 1.0])
    blend = 1.0 / (1.0 + np.exp(-3.0 * lowpass_noise(rng, (hh, hw), min(hh, hw) / 8.0)))
    fibres = (1.0 - blend) * _fibre_noise(rng, (hh, hw), a1, 9.0, 0.9) + blend * _fibre_noise(
        rng, (hh, hw), a2, 9.0, 0.9
    )
    fibres = np.repeat(np.repeat(fibres, 2, axis=0), 2, axis=1)[:h, :w]
    mottle = np.repeat(np.repeat(lowpass_noise(rng, (hh, hw), 40.0), 2, axis=0), 2, axis=1)[:h, :w]

    eosin = np.where(tumor, 0.58 + 0.06 * fibres, 0.8 + 0.17 * fibres) + 0.08 * mottle
    hema = np.where(tumor, 0.26 + 0.03 * mottle, 0.05).astype(np.float32)

    border = 16
    # normal nuclei: sparse, elongated along the local fibre direction
    n_bins, variants = 12, 6
    normal_bank = _stamp_bank(rng, tumor=False, n_angles=n_bins, variants=variants)
    ys, xs = _place(rng, normal, 48.0, border)
    local = np.where(blend[ys // 2, xs // 2] > 0.5, a2, a1) + rng.normal(0, 0.15, ys.size)
    bins = np.rint(local / math.pi * n_bins).astype(np.int64) % n_bins
    ids = bins * variants + rng.integers(0, variants, ys.size)
    nuclei = _paint_nuclei((h, w), ys, xs, ids, [s for row in normal_bank for s in row])

    # tumor nuclei: crowded, large, dark and irregular, denser in some nests
    tumor_bank = [s for row in _stamp_bank(rng, tumor=True, n_angles=8, variants=10) for s in row]
    ys, xs = _place(rng, tumor, 15.0, border)
    nests = lowpass_noise(rng, (h // NEST_GRID + 1, w // NEST_GRID + 1), 6.0)[
        ys // NEST_GRID, xs // NEST_GRID
    ]
    keep = rng.random(ys.size) < 0.6 + 0.4 * np.clip(nests, -1, 1)
    ys, xs = ys[keep], xs[keep]
    nuclei += _paint_nuclei((h, w), ys, xs, rng.integers(0, len(tumor_bank), ys.size), tumor_bank)

    hema += 1.6 * (1.0 - np.exp(-nuclei / 1.6))
    eosin *= 1.0 - 0.35 * np.clip(nuclei, 0.0, 1.0)  # nuclei displace eosin-stained stroma

    hema = ndimage.gaussian_filter(hema * alpha * spec["hematoxylin_amount"], 0.7)
    eosin = ndimage.gaussian_filter(np.clip(eosin, 0.0, None) * alpha * spec["eosin_amount"], 0.7)

    grain = rng.standard_normal((h, w), dtype=np.float32) * 0.012
    out = np.empty((h, w, 3), np.uint8)
    for c in range(3):
        od = hema * spec["hematoxylin_od"][c] + eosin * spec["eosin_od"][c] + grain
        chan = BACKGROUND * np.exp(-od) + 0.5
        out[..., c] = np.clip(chan, 0, 255).astype(np.uint8)
    return out
