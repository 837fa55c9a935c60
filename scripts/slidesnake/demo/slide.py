"""Write the demo study: seeded synthetic H&E slides (Aperio SVS) and their tumor annotations (GeoJSON)."""

from __future__ import annotations

import json
import uuid
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from shapely import Polygon
from skimage.draw import polygon as draw_polygon

from ..io import atomic_path
from ..study import write_sheet
from .artefacts import artefact_layers
from .layout import COARSE, tissue_field, tumor_polygons
from .render import render
from .sheet import DEMO_DATASETS, demo_sheet, slide_look
from .svs import write_slide
from .texture import GEN_MPP

SLIDE_UM = (1200.0, 800.0)  # width, height in micrometres
SMALL_SLIDE_UM = (600.0, 400.0)
#: How annotators draw: outlines a little generous (this far outside the tumor, um, drawn per slide),
#: simplified to vertices about this far apart (um), and a small focus of tumor left out on some slides.
ANNOTATION_MARGIN_UM = (5.0, 18.0)
ANNOTATION_TOLERANCE_UM = 6.0
UNANNOTATED_FOCUS = 0.4
#: The tissue of a slide almost without tissue (mm2): a few tiles, more than the tissue mask's smallest piece.
SPARSE_MM2 = 0.03
QUALITY = 85
_UUID_NAMESPACE = uuid.UUID("5d1e5a4e-0b7c-4d59-9a53-2f6c1f0d2e11")


def _aperio_fields(slide_id: str, spec: dict) -> dict:
    """The Aperio description fields of a demo slide (what a real scanner writes, fixed date)."""
    return {
        "AppMag": spec["app_mag"],
        "StripeWidth": 2040,
        "ScanScope ID": "DEMO",
        "Filename": slide_id,
        "MPP": f"{spec['mpp']:.4f}",
        "Left": "25.0",
        "Top": "20.0",
        "Date": "01/01/26",
        "Time": "12:00:00",
    }


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


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


def _drawn_outline(
    poly: np.ndarray, to_level0: float, margin: float, shape0: tuple[int, int], mpp: float
) -> list[list[float]]:
    """A tumor polygon (rows, cols on the coarse grid) as an annotator outlines it: a closed ring of
    [x, y] level-0 pixels, `margin` pixels outside the tumor, simplified, inside the slide."""
    outline = Polygon(
        np.stack([(poly[:, 1] + 0.5) * to_level0 - 0.5, (poly[:, 0] + 0.5) * to_level0 - 0.5], 1)
    )
    outline = outline.buffer(margin).simplify(ANNOTATION_TOLERANCE_UM / mpp)
    if outline.geom_type != "Polygon":  # a buffer of a valid star polygon is one polygon; keep the largest
        outline = max(outline.geoms, key=lambda g: g.area)
    xs = np.clip(np.round(np.asarray(outline.exterior.xy[0]), 1), 0, shape0[1] - 1)
    ys = np.clip(np.round(np.asarray(outline.exterior.xy[1]), 1), 0, shape0[0] - 1)
    return [[float(x), float(y)] for x, y in zip(xs, ys, strict=True)]


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
        A key of :data:`DEMO_DATASETS` (``"site_a"``, ``"site_b"`` or ``"site_c"``): sets the level-0
        resolution, objective power, stain colours and scanner blur. The slide's artefact (if any)
        and trait follow from its id (:func:`~.sheet.slide_look`).
    small : bool, optional
        Write a 600 x 400 um slide instead of 1200 x 800 um (for fast tests).

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

    look = slide_look(slide_id, dataset)
    sparse = SPARSE_MM2 / (width_um * height_um / 1e6) if look["artefact"] == "sparse" else None
    field, threshold, radius = tissue_field(rng, (ch, cw), sparse=sparse)
    tissue_coarse = field > threshold
    annotated = tumor_polygons(rng, tissue_coarse, cover=spec["tumor_cover"])
    polygons = list(annotated)
    if annotated and rng.random() < UNANNOTATED_FOCUS:  # a focus the annotator missed
        taken = np.zeros_like(tissue_coarse)
        for poly in annotated:
            taken[draw_polygon(poly[:, 0], poly[:, 1], taken.shape)] = True
        polygons += tumor_polygons(rng, tissue_coarse, cover=(0.03, 0.06), most=1, taken=taken)

    # soft tissue mask at GEN_MPP: linear interpolation of the coarse field
    gy = np.clip((np.arange(h, dtype=np.float32) + 0.5) / COARSE - 0.5, 0, ch - 1)
    gx = np.clip((np.arange(w, dtype=np.float32) + 0.5) / COARSE - 0.5, 0, cw - 1)
    y0, x0 = np.minimum(gy.astype(np.int64), ch - 2), np.minimum(gx.astype(np.int64), cw - 2)
    fy, fx = (gy - y0)[:, None], (gx - x0)[None, :]
    along_x = field[:, x0] * (1 - fx) + field[:, x0 + 1] * fx  # (ch, w)
    fine = along_x[y0] * (1 - fy) + along_x[y0 + 1] * fy
    soft = 1.5 / (COARSE * radius)  # about 1.5 generated pixels of edge
    alpha = np.clip((fine - threshold) / soft + 0.5, 0.0, 1.0).astype(np.float32)

    # the tumor rasterised on the generated grid; the annotator's outlines in level-0 pixels
    h0, w0 = h * scale, w * scale
    tumor = np.zeros((h, w), bool)
    for poly in polygons:
        rr, cc = draw_polygon((poly[:, 0] + 0.5) * COARSE - 0.5, (poly[:, 1] + 0.5) * COARSE - 0.5, (h, w))
        tumor[rr, cc] = True
    tumor &= alpha > 0.5
    margin = rng.uniform(*ANNOTATION_MARGIN_UM) / spec["mpp"]
    rings = [_drawn_outline(poly, COARSE * scale, margin, (h0, w0), spec["mpp"]) for poly in annotated]

    layers = artefact_layers(rng, look["artefact"], alpha > 0.5)
    image = render(rng, spec, alpha, tumor, trait=look["trait"], artefacts=layers)
    if scale > 1:
        image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)

    svs_path.parent.mkdir(parents=True, exist_ok=True)
    geojson_path.parent.mkdir(parents=True, exist_ok=True)
    write_slide(
        svs_path, image, mpp=spec["mpp"], quality=QUALITY, aperio_fields=_aperio_fields(slide_id, spec)
    )
    _write_text(geojson_path, _geojson(slide_id, rings))


def write_demo_study(out_dir: str | Path, small: bool = False) -> pd.DataFrame:
    """Write the demo study: its slides, their annotations and ``slides.tsv``.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created if missing).
    small : bool, optional
        The small study (12 slides of site_a and site_b, 600 x 400 um) instead of the whole one
        (40 slides, 1200 x 800 um).

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
    write_sheet(sheet, Path(out_dir) / "slides.tsv")
    return sheet
