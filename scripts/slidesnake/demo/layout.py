"""Where the demo's tissue and tumor lie: smooth tissue blobs and star-shaped tumor polygons inside them."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.draw import polygon as draw_polygon

from .texture import lowpass_noise

#: Tissue layout and tumor polygons are planned on a grid of COARSE generated pixels.
COARSE = 4


def tissue_field(
    rng: np.random.Generator, shape: tuple[int, int], sparse: float | None = None
) -> tuple[np.ndarray, float, float]:
    """Smooth field whose upper level set is 1-3 irregular tissue blobs (one fragment of `sparse` x the area).

    Returns the field (coarse grid), the threshold, and a typical blob radius (coarse px).
    """
    ch, cw = shape
    n_blobs = int(rng.integers(1, 4))
    fraction = float(rng.uniform(0.38, 0.47))
    if sparse is not None:  # a slide almost without tissue: one small fragment
        n_blobs, fraction = 1, sparse
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    field = np.full(shape, -np.inf, np.float32)
    weights = rng.dirichlet(np.full(n_blobs, 5.0))
    radii = []
    for i in range(n_blobs):
        cx = (i + 0.5 + rng.uniform(-0.12, 0.12)) * cw / n_blobs
        cy = ch * (0.5 + rng.uniform(-0.1, 0.1))
        radius = math.sqrt(fraction * ch * cw * weights[i] / math.pi)
        radii.append(radius)
        dy, dx = yy - cy, xx - cx
        theta = np.arctan2(dy, dx)
        stretch = 1.0 + 0.18 * np.cos(2.0 * (theta - rng.uniform(0, math.pi)))
        wobble = sum(
            rng.uniform(0.0, 0.22) / k * np.cos(k * theta + rng.uniform(0, 2 * math.pi)) for k in range(3, 7)
        )
        field = np.maximum(field, 1.0 - np.hypot(dy, dx) / (radius * (stretch + wobble)))
    field += 0.1 * lowpass_noise(rng, shape, min(ch, cw) / 14.0)
    # keep tissue off the slide edges
    margin = np.minimum(np.minimum(yy, ch - 1 - yy), np.minimum(xx, cw - 1 - xx))
    m0 = 0.15 * min(ch, cw)
    field -= 2.0 * np.clip(1.0 - margin / m0, 0.0, 1.0) ** 2
    threshold = float(np.quantile(field, 1.0 - fraction))
    return field, threshold, float(np.mean(radii))


def _ray_exit(mask: np.ndarray, cy: float, cx: float, angles: np.ndarray) -> np.ndarray:
    """Distance from (cy, cx) along each angle to the first pixel outside `mask` (grid px)."""
    h, w = mask.shape
    t = np.arange(0.0, float(np.hypot(h, w)), 0.5)
    ys = np.rint(cy + np.sin(angles)[:, None] * t[None, :]).astype(np.int64)
    xs = np.rint(cx + np.cos(angles)[:, None] * t[None, :]).astype(np.int64)
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    inside[inside] = mask[ys[inside], xs[inside]]
    first_out = np.argmin(inside, axis=1)  # inside is False at the far end of every ray
    return t[first_out]


def _polygon_area(r: np.ndarray, angles: np.ndarray) -> float:
    d = (np.roll(angles, -1) - angles) % (2 * math.pi)
    return float(0.5 * np.sum(r * np.roll(r, -1) * np.sin(d)))


def tumor_polygons(
    rng: np.random.Generator,
    tissue: np.ndarray,
    *,
    cover: tuple[float, float],
    most: int = 2,
    taken: np.ndarray | None = None,
) -> list[np.ndarray]:
    """1 to `most` star-shaped polygons (rows, cols on the coarse grid) inside `tissue`, apart from `taken`.

    Together they cover a share of the tissue area drawn from `cover` (at least its lower end when
    there is room).
    """
    tissue_area = float(tissue.sum())
    share = float(rng.uniform(*cover))
    n_target = int(rng.integers(1, most + 1))
    taken = np.zeros_like(tissue) if taken is None else taken.copy()
    before = float((taken & tissue).sum()) / tissue_area
    polygons: list[np.ndarray] = []
    for k in range(most):
        covered = float((taken & tissue).sum()) / tissue_area - before
        if k >= n_target and covered >= cover[0]:
            break
        free = tissue & ~ndimage.binary_dilation(taken, iterations=3) if taken.any() else tissue
        dist = ndimage.distance_transform_edt(free)
        if dist.max() < 4:
            break
        cand = np.argwhere(dist >= 0.75 * dist.max())
        cy, cx = (cand[int(rng.integers(len(cand)))] + rng.uniform(-0.4, 0.4, 2)).tolist()
        n = int(rng.integers(12, 25))
        angles = rng.uniform(0, 2 * math.pi) + 2 * math.pi * (np.arange(n) + rng.uniform(-0.3, 0.3, n)) / n
        u = rng.uniform(0.5, 1.0, n)
        u = 0.6 * u + 0.2 * (np.roll(u, 1) + np.roll(u, -1))
        cap = np.maximum(0.9 * _ray_exit(free, cy, cx, angles) - 1.0, 1.0)
        target = (share - covered) * tissue_area / max(1, n_target - k)
        if target <= 0:
            break
        lo, hi = 0.0, float(cap.max() / u.min()) + 1.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if _polygon_area(np.minimum(mid * u, cap), angles) < target:
                lo = mid
            else:
                hi = mid
        r = np.minimum(hi * u, cap)
        poly = np.stack([cy + r * np.sin(angles), cx + r * np.cos(angles)], axis=1)
        rr, cc = draw_polygon(poly[:, 0], poly[:, 1], tissue.shape)
        taken[rr, cc] = True
        polygons.append(poly)
    return polygons
