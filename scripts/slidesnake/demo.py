"""Seeded, deterministic demo study of synthetic H&E whole-slide images.

Each demo slide is a real-format pyramidal Aperio SVS (JPEG tiles, thumbnail, Aperio
ImageDescription) that OpenSlide opens, showing procedural H&E-like tissue on a white
background. Tumor regions are irregular polygons inside the tissue, painted with a texture
that differs from normal tissue, and written as a QuPath-style GeoJSON next to each slide:

- normal: pink eosin stroma with fibres and sparse, small, elongated, pale-purple nuclei;
- tumor: crowded, larger, darker, irregular hematoxylin-purple nuclei on a slightly more
  purple background.

Two "sites" mimic two scanners: ``site_a`` scans at 40x (0.25 um/px) with a pinker stain,
``site_b`` at 20x (0.5 um/px) with a bluer, more purple stain. The study has 12 slides from
8 patients (6 slides and 4 patients per site, two patients per site with two slides).

Everything is seeded from the slide id, so the same id gives byte-identical files on every
run. Command line (with ``scripts/`` on ``PYTHONPATH``)::

    python -m slidesnake.demo OUT_DIR [--small]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import uuid
import zlib
from pathlib import Path, PurePath

import numpy as np
import pandas as pd
import tifffile
from scipy import ndimage
from skimage.draw import polygon as draw_polygon

__all__ = ["DEMO_DATASETS", "demo_sheet", "main", "write_demo_slide", "write_demo_study"]

DEMO_DATASETS: dict[str, dict] = {
    "site_a": {
        "mpp": 0.25,
        "app_mag": 40,
        "slide_prefix": "A",
        "patient_prefix": "PA",
        "slides_per_patient": (2, 1, 2, 1),
        # Optical density (R, G, B) per unit of stain: a pink, eosin-heavy stain.
        "hematoxylin_od": (0.64, 0.92, 0.26),
        "eosin_od": (0.06, 0.62, 0.25),
        "eosin_amount": 1.0,
        "hematoxylin_amount": 0.9,
    },
    "site_b": {
        "mpp": 0.5,
        "app_mag": 20,
        "slide_prefix": "B",
        "patient_prefix": "PB",
        "slides_per_patient": (1, 2, 1, 2),
        # A bluer hematoxylin and a more purple eosin: the whole slide looks more purple.
        "hematoxylin_od": (0.86, 0.78, 0.20),
        "eosin_od": (0.20, 0.62, 0.16),
        "eosin_amount": 0.9,
        "hematoxylin_amount": 1.1,
    },
}

SHEET_COLUMNS = ["slide_id", "patient_id", "dataset", "path", "annotations"]
SLIDE_UM = (1500.0, 1000.0)  # width, height in micrometres
SMALL_SLIDE_UM = (600.0, 400.0)
GEN_MPP = 0.5  # the texture is generated at this resolution, then upsampled to level 0
COARSE = 4  # tissue layout and tumor polygons are planned on a grid of COARSE gen pixels
TILE = 256
QUALITY = 85
THUMB_MAX = 768
BACKGROUND = 240.0
APERIO_HEAD = "Aperio Image Library v12.0.15 \r\n"
_UUID_NAMESPACE = uuid.UUID("5d1e5a4e-0b7c-4d59-9a53-2f6c1f0d2e11")


# ----------------------------------------------------------------------------- sheet


def _posix(root: str | Path) -> str:
    return root.as_posix() if isinstance(root, PurePath) else os.fspath(root)


def demo_sheet(root: str | Path, small: bool = False) -> pd.DataFrame:
    """Return the slide sheet of the demo study.

    Parameters
    ----------
    root : str or Path
        Folder that holds (or will hold) the demo slides. It is joined as given, not resolved.
    small : bool, optional
        Accepted for symmetry with :func:`write_demo_study`; the sheet does not depend on it.

    Returns
    -------
    pandas.DataFrame
        One row per slide (12 slides, 8 patients, 2 datasets) with columns ``slide_id``,
        ``patient_id``, ``dataset``, ``path`` (``{root}/{slide_id}.svs``) and ``annotations``
        (``{root}/{slide_id}.geojson``).
    """
    del small  # geometry only; the sheet is the same
    base = _posix(root)
    rows = []
    for dataset, spec in DEMO_DATASETS.items():
        n = 0
        for p, count in enumerate(spec["slides_per_patient"], start=1):
            for _ in range(count):
                n += 1
                slide_id = f"{spec['slide_prefix']}{n:02d}"
                rows.append(
                    {
                        "slide_id": slide_id,
                        "patient_id": f"{spec['patient_prefix']}{p}",
                        "dataset": dataset,
                        "path": f"{base}/{slide_id}.svs",
                        "annotations": f"{base}/{slide_id}.geojson",
                    }
                )
    return pd.DataFrame(rows, columns=SHEET_COLUMNS)


# ----------------------------------------------------------------------------- noise helpers


def _lowpass_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
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


# ----------------------------------------------------------------------------- geometry


def _tissue_field(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, float, float]:
    """Smooth field whose upper level set is 1-3 irregular tissue blobs.

    Returns the field (coarse grid), the threshold, and a typical blob radius (coarse px).
    """
    ch, cw = shape
    n_blobs = int(rng.integers(1, 4))
    fraction = float(rng.uniform(0.38, 0.47))
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
    field += 0.1 * _lowpass_noise(rng, shape, min(ch, cw) / 14.0)
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


def _tumor_polygons(rng: np.random.Generator, tissue: np.ndarray) -> list[np.ndarray]:
    """1-2 star-shaped polygons (rows, cols on the coarse grid) inside `tissue`.

    Together they cover about 25-40% of the tissue area.
    """
    tissue_area = float(tissue.sum())
    cover = float(rng.uniform(0.27, 0.36))
    n_target = int(rng.integers(1, 3))
    taken = np.zeros_like(tissue)
    polygons: list[np.ndarray] = []
    for k in range(2):
        covered = float((taken & tissue).sum()) / tissue_area
        if k >= n_target and covered >= 0.25:
            break
        free = tissue & ~ndimage.binary_dilation(taken, iterations=3) if k else tissue
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
        target = (cover * tissue_area - covered * tissue_area) / max(1, n_target - k)
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


# ----------------------------------------------------------------------------- nuclei


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


# ----------------------------------------------------------------------------- rendering


def _render(rng: np.random.Generator, spec: dict, alpha: np.ndarray, tumor: np.ndarray) -> np.ndarray:
    """RGB uint8 image at GEN_MPP from a soft tissue mask `alpha` and a boolean tumor mask."""
    h, w = alpha.shape
    tissue = alpha > 0.5
    normal = tissue & ~tumor

    # stroma fibres: two streak directions blended by a smooth weight, made at half resolution
    hh, hw = (h + 1) // 2, (w + 1) // 2
    a1 = rng.uniform(0, math.pi)
    a2 = a1 + rng.uniform(0.6, 1.2) * rng.choice([-1.0, 1.0])
    blend = 1.0 / (1.0 + np.exp(-3.0 * _lowpass_noise(rng, (hh, hw), min(hh, hw) / 8.0)))
    fibres = (1.0 - blend) * _fibre_noise(rng, (hh, hw), a1, 9.0, 0.9) + blend * _fibre_noise(
        rng, (hh, hw), a2, 9.0, 0.9
    )
    fibres = np.repeat(np.repeat(fibres, 2, axis=0), 2, axis=1)[:h, :w]
    mottle = np.repeat(np.repeat(_lowpass_noise(rng, (hh, hw), 40.0), 2, axis=0), 2, axis=1)[:h, :w]

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
    nests = _lowpass_noise(rng, (h // COARSE + 1, w // COARSE + 1), 6.0)[ys // COARSE, xs // COARSE]
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


# ----------------------------------------------------------------------------- writing


def _downsample4(a: np.ndarray) -> np.ndarray:
    """Area-average by 4 in both directions (edges padded by replication)."""
    h, w = a.shape[:2]
    ph, pw = -h % 4, -w % 4
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="edge")
    h, w = a.shape[:2]
    rows = a[0::4].astype(np.uint16)
    for i in range(1, 4):
        rows += a[i::4]
    cols = rows.reshape(h // 4, w // 4, 4, 3)
    total = cols[:, :, 0] + cols[:, :, 1] + cols[:, :, 2] + cols[:, :, 3]
    return ((total + 8) >> 4).astype(np.uint8)


def _thumbnail(levels: list[np.ndarray]) -> np.ndarray:
    """A thumbnail at most THUMB_MAX px on its long side, area-averaged from a pyramid level."""
    src = levels[0]
    for lv in levels:
        if max(lv.shape[:2]) >= THUMB_MAX:
            src = lv
    f = -(-max(src.shape[:2]) // THUMB_MAX)
    if f == 1:
        return np.ascontiguousarray(src)
    h, w = src.shape[:2]
    ph, pw = -h % f, -w % f
    padded = np.pad(src, ((0, ph), (0, pw), (0, 0)), mode="edge")
    v = padded.reshape((h + ph) // f, f, (w + pw) // f, f, 3).astype(np.uint32)
    return ((v.sum(axis=(1, 3)) + f * f // 2) // (f * f)).astype(np.uint8)


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _write_svs(path: Path, level0: np.ndarray, slide_id: str, mpp: float, mag: int) -> None:
    h, w = level0.shape[:2]
    levels = [level0]
    while min(levels[-1].shape[:2]) > 512:
        levels.append(_downsample4(levels[-1]))
    thumb = _thumbnail(levels)
    head = f"{APERIO_HEAD}{w}x{h} [0,0 {w}x{h}] ({TILE}x{TILE})"
    jpeg = {
        "photometric": "rgb",
        "compression": "jpeg",
        "compressionargs": {"level": QUALITY},
        "metadata": None,
    }
    tmp = _tmp_path(path)
    try:
        with tifffile.TiffWriter(tmp, bigtiff=False) as tw:
            desc = (
                f"{head} JPEG/RGB Q={QUALITY}|AppMag = {mag}|StripeWidth = 2040|ScanScope ID = DEMO"
                f"|Filename = {slide_id}|MPP = {mpp:.4f}|Left = 25.0|Top = 20.0"
                f"|Date = 01/01/26|Time = 12:00:00"
            )
            tw.write(level0, tile=(TILE, TILE), description=desc, **jpeg)
            th, tw_ = thumb.shape[:2]
            tw.write(thumb, rowsperstrip=16, description=f"{APERIO_HEAD}{w}x{h} -> {tw_}x{th} - ", **jpeg)
            for lv in levels[1:]:
                desc = f"{head} -> {lv.shape[1]}x{lv.shape[0]} JPEG/RGB Q={QUALITY}"
                tw.write(lv, tile=(TILE, TILE), description=desc, **jpeg)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_text(path: Path, text: str) -> None:
    tmp = _tmp_path(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _geojson(slide_id: str, rings: list[list[list[float]]]) -> str:
    features = []
    for k, ring in enumerate(rings):
        features.append(
            {
                "type": "Feature",
                "id": str(uuid.uuid5(_UUID_NAMESPACE, f"{slide_id}/tumor/{k}")),
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {
                    "objectType": "annotation",
                    "classification": {"name": "Tumor", "color": [200, 0, 0]},
                },
            }
        )
    return json.dumps({"type": "FeatureCollection", "features": features}) + "\n"


def write_demo_slide(
    svs_path: str | Path, geojson_path: str | Path, slide_id: str, dataset: str, small: bool = False
) -> None:
    """Write one synthetic H&E slide (Aperio SVS) and its tumor annotations (GeoJSON).

    The output is seeded from `slide_id` only, so the same id, dataset and size give
    byte-identical files. Both files are written under a temporary name in their folder and
    moved into place when complete.

    Parameters
    ----------
    svs_path : str or Path
        Where to write the pyramidal SVS. Its folder is created if missing.
    geojson_path : str or Path
        Where to write the QuPath-style GeoJSON FeatureCollection of tumor polygons, with
        coordinates in level-0 pixels (x = column, y = row).
    slide_id : str
        Slide identifier; seeds the generator and is written as the Aperio ``Filename``.
    dataset : str
        A key of :data:`DEMO_DATASETS` (``"site_a"`` or ``"site_b"``): sets the level-0
        resolution, objective power and stain colours.
    small : bool, optional
        Write a 600 x 400 um slide instead of 1500 x 1000 um (for fast tests).

    Raises
    ------
    ValueError
        If `dataset` is not a key of :data:`DEMO_DATASETS`.
    """
    if dataset not in DEMO_DATASETS:
        raise ValueError(f"unknown demo dataset {dataset!r}; expected one of {sorted(DEMO_DATASETS)}")
    spec = DEMO_DATASETS[dataset]
    svs_path, geojson_path = Path(svs_path), Path(geojson_path)
    rng = np.random.default_rng(zlib.crc32(slide_id.encode("utf-8")))
    width_um, height_um = SMALL_SLIDE_UM if small else SLIDE_UM
    h, w = round(height_um / GEN_MPP), round(width_um / GEN_MPP)
    scale = round(GEN_MPP / spec["mpp"])  # level-0 pixels per generated pixel
    ch, cw = -(-h // COARSE), -(-w // COARSE)

    field, threshold, radius = _tissue_field(rng, (ch, cw))
    tissue_coarse = field > threshold
    polygons = _tumor_polygons(rng, tissue_coarse)

    # soft tissue mask at GEN_MPP: linear interpolation of the coarse field
    gy = np.clip((np.arange(h, dtype=np.float32) + 0.5) / COARSE - 0.5, 0, ch - 1)
    gx = np.clip((np.arange(w, dtype=np.float32) + 0.5) / COARSE - 0.5, 0, cw - 1)
    y0, x0 = np.minimum(gy.astype(np.int64), ch - 2), np.minimum(gx.astype(np.int64), cw - 2)
    fy, fx = (gy - y0)[:, None], (gx - x0)[None, :]
    along_x = field[:, x0] * (1 - fx) + field[:, x0 + 1] * fx  # (ch, w)
    fine = along_x[y0] * (1 - fy) + along_x[y0 + 1] * fy
    soft = 1.5 / (COARSE * radius)  # about 1.5 generated pixels of edge
    alpha = np.clip((fine - threshold) / soft + 0.5, 0.0, 1.0).astype(np.float32)

    # polygons in level-0 pixels, rounded, then rasterised back on the generated grid
    h0, w0 = h * scale, w * scale
    rings: list[list[list[float]]] = []
    tumor = np.zeros((h, w), bool)
    for poly in polygons:
        rows0 = np.clip(np.round((poly[:, 0] + 0.5) * COARSE * scale - 0.5, 1), 0, h0 - 1)
        cols0 = np.clip(np.round((poly[:, 1] + 0.5) * COARSE * scale - 0.5, 1), 0, w0 - 1)
        ring = [[round(float(x), 1), round(float(y), 1)] for x, y in zip(cols0, rows0, strict=True)]
        rings.append(ring + [ring[0]])
        rr, cc = draw_polygon((rows0 + 0.5) / scale - 0.5, (cols0 + 0.5) / scale - 0.5, (h, w))
        tumor[rr, cc] = True
    tumor &= alpha > 0.5

    image = _render(rng, spec, alpha, tumor)
    if scale > 1:
        image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)

    svs_path.parent.mkdir(parents=True, exist_ok=True)
    geojson_path.parent.mkdir(parents=True, exist_ok=True)
    _write_svs(svs_path, image, slide_id, spec["mpp"], spec["app_mag"])
    _write_text(geojson_path, _geojson(slide_id, rings))


def write_demo_study(out_dir: str | Path, small: bool = False) -> pd.DataFrame:
    """Write the whole demo study: 12 slides, their annotations and ``slides.tsv``.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created if missing).
    small : bool, optional
        Write small 600 x 400 um slides instead of 1500 x 1000 um.

    Returns
    -------
    pandas.DataFrame
        The slide sheet, ``demo_sheet(out_dir)``, also written tab-separated without index
        to ``out_dir/slides.tsv``.
    """
    sheet = demo_sheet(out_dir, small=small)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for row in sheet.itertuples(index=False):
        write_demo_slide(row.path, row.annotations, row.slide_id, row.dataset, small=small)
    _write_text(Path(out_dir) / "slides.tsv", sheet.to_csv(sep="\t", index=False))
    return sheet


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m slidesnake.demo OUT_DIR [--small]``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).
    """
    ap = argparse.ArgumentParser(prog="python -m slidesnake.demo", description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", help="folder to write the demo slides, annotations and slides.tsv into")
    ap.add_argument("--small", action="store_true", help="small 600 x 400 um slides (fast)")
    args = ap.parse_args(argv)
    sheet = write_demo_study(args.out_dir, small=args.small)
    print(
        f"wrote {len(sheet)} demo slides ({sheet['patient_id'].nunique()} patients) to {args.out_dir}; "
        f"sheet: {Path(args.out_dir) / 'slides.tsv'}"
    )


if __name__ == "__main__":
    main()
