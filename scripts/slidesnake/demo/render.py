"""The stained image of a demo slide: stroma, glands, inflammation, graded tumor, the stain and the scanner.

What makes the demo hard, as real H&E is: normal glands (and glands cut tangentially, solid nests of
epithelial nuclei without a lumen), inflamed stroma crowded with small dark lymphocytes, tumor that is
less atypical at its edges and in patches, tumor glands with lumens, staining that varies from slide
to slide and across a slide, and a scanner that may be soft.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .artefacts import ArtefactLayers
from .texture import fibre_noise, lowpass_noise, paint_nuclei, place, stamp_bank, stamp_ids

#: Background brightness of the glass.
BACKGROUND = 240.0
#: The trait (a slide label): this share of a trait slide's tumor cells have vesicular nuclei.
VESICULAR_SHARE = 0.35
#: Mucin pools of a trait slide: where a smooth unit-variance noise field exceeds this level.
MUCIN_LEVEL = 1.4
#: Depth into the tumor (generated pixels, 0.5 um) over which it grows from low grade to its full atypia.
EDGE_PX = 50.0
#: Standard deviation (log scale) of a slide's stain amounts around its site's; of the section's thickness.
STAIN_JITTER = 0.12
THICKNESS_JITTER = 0.1


def _upsample2(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)[: shape[0], : shape[1]]


def _glands(rng: np.random.Generator, normal: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Normal glands in `normal` tissue: lumen and epithelium masks, and their nuclei (rows, cols, angles).

    A quarter of the glands are cut tangentially: no lumen, a solid nest of epithelial nuclei.
    """
    h, w = normal.shape
    inner = ndimage.binary_erosion(normal, iterations=40)
    cy, cx = place(rng, inner, 170.0)
    n = cy.size
    if not n:
        empty = np.zeros((h, w), bool)
        return empty, empty, (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    lumen_r = np.where(rng.random(n) < 0.25, 0.0, rng.uniform(12.0, 24.0, n))
    thickness = rng.uniform(16.0, 22.0, n)
    seeds = np.ones((h, w), bool)
    seeds[cy, cx] = False
    dist, (iy, ix) = ndimage.distance_transform_edt(seeds, return_indices=True)
    index = np.full((h, w), -1, np.int64)
    index[cy, cx] = np.arange(n)
    owner = index[iy, ix]
    lumen = (dist < lumen_r[owner]) & normal
    epithelium = (dist >= lumen_r[owner]) & (dist < lumen_r[owner] + thickness[owner]) & normal

    rows, cols, angles = [], [], []
    for k in range(n):
        if lumen_r[k] > 0:  # a ring of basal nuclei, long axis radial
            ring = lumen_r[k] + 0.7 * thickness[k]
            m = max(6, int(2 * math.pi * ring / 6.5))
            theta = 2 * math.pi * (np.arange(m) + rng.uniform(-0.25, 0.25, m)) / m
            r = ring + rng.normal(0, 1.0, m)
        else:  # a tangential cut: nuclei crowded in a disc, any orientation
            m = int(rng.integers(10, 18))
            theta = rng.uniform(0, 2 * math.pi, m)
            r = thickness[k] * np.sqrt(rng.random(m))
        rows.append(np.rint(cy[k] + r * np.sin(theta)).astype(np.int64))
        cols.append(np.rint(cx[k] + r * np.cos(theta)).astype(np.int64))
        angles.append(theta if lumen_r[k] > 0 else rng.uniform(0, math.pi, m))
    rows, cols, angles = np.concatenate(rows), np.concatenate(cols), np.concatenate(angles)
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    rows, cols, angles = rows[inside], cols[inside], angles[inside]
    keep = normal[rows, cols]
    return lumen, epithelium, (rows[keep], cols[keep], angles[keep])


def _tumor_grade(rng: np.random.Generator, tumor: np.ndarray) -> np.ndarray:
    """0-1 atypia inside the tumor: low at its edges (:data:`EDGE_PX`) and in low-grade patches, 0 outside."""
    h, w = tumor.shape
    depth = np.clip(ndimage.distance_transform_edt(tumor) / EDGE_PX, 0.0, 1.0)
    patches = lowpass_noise(rng, ((h + 3) // 4, (w + 3) // 4), 12.0)
    patches = np.repeat(np.repeat(patches, 4, axis=0), 4, axis=1)[:h, :w]
    low = 1.0 / (1.0 + np.exp(-4.0 * (patches - 0.9)))  # about a fifth of the tumor is low grade
    return (depth * (1.0 - 0.75 * low)).astype(np.float32)


def _mucin(rng: np.random.Generator, tumor: np.ndarray) -> np.ndarray:
    """Small pools of extracellular mucin in about a twelfth of the tumor (part of the trait)."""
    h, w = tumor.shape
    field = ndimage.zoom(lowpass_noise(rng, (h // 4 + 1, w // 4 + 1), 8.0), 4, order=1)[:h, :w]
    return tumor & (field > MUCIN_LEVEL) & (ndimage.distance_transform_edt(tumor) > 10)


def _tumor_nuclei(
    rng: np.random.Generator, tumor: np.ndarray, grade: np.ndarray, lumens: np.ndarray, trait: bool
) -> np.ndarray:
    """Tumor nuclei: crowded, larger, darker where the grade is high; in a trait slide, scattered among them,
    :data:`VESICULAR_SHARE` of them vesicular.

    In a trait slide's mucin lakes (``lumens`` holds them too) only a few cells float.
    """
    h, w = tumor.shape
    ys, xs = place(rng, tumor & ~ndimage.binary_dilation(lumens, iterations=3), 15.0)
    nests = lowpass_noise(rng, (h // 4 + 1, w // 4 + 1), 6.0)[ys // 4, xs // 4]
    g = grade[ys, xs]
    keep = rng.random(ys.size) < (0.6 + 0.4 * np.clip(nests, -1, 1)) * (0.5 + 0.5 * g)
    ys, xs, g = ys[keep], xs[keep], g[keep]
    high = rng.random(ys.size) < g
    kinds = np.where(high, "tumor", "tumor_low")
    if trait:  # the trait lives in a share of the tumor cells, everywhere in the tumor
        kinds = np.where(rng.random(ys.size) < VESICULAR_SHARE, "tumor_vesicular", kinds)
    nuclei = np.zeros((h, w), np.float32)
    for kind in np.unique(kinds):
        sel = kinds == kind
        nuclei += paint_nuclei(
            (h, w), ys[sel], xs[sel], stamp_ids(rng, None, int(sel.sum())), stamp_bank(rng, kind)
        )
    return nuclei


def render(
    rng: np.random.Generator,
    spec: dict,
    alpha: np.ndarray,
    tumor: np.ndarray,
    *,
    trait: bool = False,
    artefacts: ArtefactLayers | None = None,
) -> np.ndarray:
    """RGB uint8 image at GEN_MPP from a soft tissue mask `alpha` and a boolean tumor mask.

    Parameters
    ----------
    rng : numpy.random.Generator
        The slide's generator.
    spec : dict
        The site (a :data:`~.sheet.DEMO_DATASETS` entry): stain vectors and amounts, scanner blur.
    alpha, tumor : numpy.ndarray
        (row, column) soft tissue mask (0-1) and tumor mask at GEN_MPP.
    trait : bool
        The demo's slide-level trait: vesicular nuclei (larger, pale, a dark rim and a nucleolus) in
        :data:`VESICULAR_SHARE` of the tumor cells, and small pools of mucin in about a tenth of the tumor.
    artefacts : ArtefactLayers, optional
        A fold (thicker tissue), an out-of-focus region and pen ink laid over the slide.
    """
    h, w = alpha.shape
    tissue = alpha > 0.5
    normal = tissue & ~tumor
    hh, hw = (h + 1) // 2, (w + 1) // 2

    # stroma fibres: two streak directions blended by a smooth weight, made at half resolution
    a1 = rng.uniform(0, math.pi)
    a2 = a1 + rng.uniform(0.6, 1.2) * rng.choice([-1.0, 1.0])
    blend = 1.0 / (1.0 + np.exp(-3.0 * lowpass_noise(rng, (hh, hw), min(hh, hw) / 8.0)))
    fibres = (1.0 - blend) * fibre_noise(rng, (hh, hw), a1, 9.0, 0.9) + blend * fibre_noise(
        rng, (hh, hw), a2, 9.0, 0.9
    )
    fibres = _upsample2(fibres, (h, w))
    mottle = _upsample2(lowpass_noise(rng, (hh, hw), 40.0), (h, w))
    inflamed = normal & (_upsample2(lowpass_noise(rng, (hh, hw), 30.0), (h, w)) > 1.1)

    grade = _tumor_grade(rng, tumor)
    lumens = tumor & (grade > 0.5)
    lumen_seeds = place(rng, lumens, 75.0)
    seeds = np.ones((h, w), bool)
    seeds[lumen_seeds] = False
    lumens &= ndimage.distance_transform_edt(seeds) < rng.uniform(5.0, 9.0)
    mucin = _mucin(rng, tumor) if trait else np.zeros((h, w), bool)
    gland_lumen, epithelium, (gy, gx, gangle) = _glands(rng, normal)

    eosin = np.where(tumor, 0.8 - 0.2 * grade + 0.06 * fibres, 0.8 + 0.17 * fibres) + 0.08 * mottle
    eosin = np.where(epithelium, 0.55 + 0.05 * mottle, eosin)
    eosin = np.where(inflamed, 0.6 + 0.08 * fibres, eosin)
    hema = 0.05 + tumor * (0.17 * grade + 0.03 * mottle) + 0.07 * epithelium + 0.05 * inflamed
    for hole in (lumens, gland_lumen):
        eosin = np.where(hole, 0.1, eosin)
        hema = np.where(hole, 0.02, hema)
    # mucin: pale, faintly blue-grey (weakly hematoxylin-stained), streaky
    eosin = np.where(mucin, 0.12 + 0.04 * fibres, eosin)
    hema = np.where(mucin, 0.16 + 0.03 * mottle, hema)

    stroma = normal & ~epithelium & ~gland_lumen
    ys, xs = place(rng, stroma, 48.0)  # fibroblasts, along the local fibre direction
    local = np.where(blend[ys // 2, xs // 2] > 0.5, a2, a1) + rng.normal(0, 0.15, ys.size)
    nuclei = paint_nuclei((h, w), ys, xs, stamp_ids(rng, local, ys.size), stamp_bank(rng, "fibroblast"))
    lymphocytes = stamp_bank(rng, "lymphocyte")
    for where, spacing in ((stroma, 70.0), (inflamed & ~gland_lumen, 8.5)):
        ys, xs = place(rng, where, spacing)
        nuclei += paint_nuclei((h, w), ys, xs, stamp_ids(rng, None, ys.size), lymphocytes)
    nuclei += paint_nuclei((h, w), gy, gx, stamp_ids(rng, gangle, gy.size), stamp_bank(rng, "epithelial"))
    nuclei += _tumor_nuclei(rng, tumor, grade, lumens | mucin, trait)
    floating = place(rng, mucin, 45.0)  # a few tumor cells floating in the mucin
    nuclei += paint_nuclei(
        (h, w), *floating, stamp_ids(rng, None, floating[0].size), stamp_bank(rng, "tumor_vesicular")
    )

    hema = hema + 1.6 * (1.0 - np.exp(-nuclei / 1.6))
    eosin = eosin * (1.0 - 0.35 * np.clip(nuclei, 0.0, 1.0))  # nuclei displace eosin-stained stroma

    # this slide's stain and the section's thickness (a fold doubles it)
    hema_amount = spec["hematoxylin_amount"] * math.exp(rng.normal(0, STAIN_JITTER))
    eosin_amount = spec["eosin_amount"] * math.exp(rng.normal(0, STAIN_JITTER))
    thickness = 1.0 + THICKNESS_JITTER * _upsample2(lowpass_noise(rng, (hh, hw), 120.0), (h, w))
    if artefacts is not None and artefacts.fold is not None:
        thickness = thickness * (1.0 + artefacts.fold)
    sigma = math.hypot(0.7, spec["scanner_blur"])
    hema = ndimage.gaussian_filter(hema * alpha * thickness * hema_amount, sigma)
    eosin = ndimage.gaussian_filter(np.clip(eosin, 0.0, None) * alpha * thickness * eosin_amount, sigma)
    if artefacts is not None and artefacts.out_of_focus is not None:
        weight = artefacts.out_of_focus
        hema = (1 - weight) * hema + weight * ndimage.gaussian_filter(hema, 8.0)
        eosin = (1 - weight) * eosin + weight * ndimage.gaussian_filter(eosin, 8.0)

    grain = rng.standard_normal((h, w), dtype=np.float32) * 0.006
    out = np.empty((h, w, 3), np.uint8)
    for c in range(3):
        od = hema * spec["hematoxylin_od"][c] + eosin * spec["eosin_od"][c] + grain
        if artefacts is not None and artefacts.pen is not None:
            od = od + artefacts.pen * artefacts.pen_od[c]
        chan = BACKGROUND * np.exp(-od) + 0.5
        out[..., c] = np.clip(chan, 0, 255).astype(np.uint8)
    return out
