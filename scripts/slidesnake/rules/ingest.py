"""Rules of ``workflow/rules/ingest.smk``: slide facts, tissue detection, tiling, the audit table."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ..io import atomic_path, read_json, write_json, write_table
from ..settings import ResolutionPolicy, TilingSettings, TissueSettings
from ..store import TileStore, make_codec, write_tile_store
from ..tissue import tile_grid, tissue_mask
from ..wsi import SlideInfo, SlideReader, plan_tiling, read_slide_info

log = logging.getLogger(__name__)


def _write_png(image: np.ndarray, path: str) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def slide_info(
    *, slide_path: str, slide_id: str, sheet_mpp: float | None, mpp_override: float | None, info_json: str
) -> SlideInfo:
    """Rule ``slide_info``: what the slide file is (levels, MPP, checksum, reader)."""
    info = read_slide_info(slide_path, slide_id, sheet_mpp=sheet_mpp, mpp_override=mpp_override)
    log.info(
        "%s: %s, %d levels, %.4f um/px (%s), read with %s",
        slide_id,
        info.vendor,
        len(info.level_dimensions),
        info.mpp_x,
        info.mpp_source,
        info.reader,
    )
    write_json(info.to_dict(), info_json)
    return info


def tissue(
    *, info_json: str, tissue: Mapping[str, Any], thumbnail_png: str, mask_png: str, qc_json: str
) -> None:
    """Rule ``tissue``: low-resolution thumbnail and tissue mask, and the tissue area."""
    settings = TissueSettings.from_config(tissue, where="tissue")
    info = SlideInfo.from_dict(read_json(info_json))
    with SlideReader(info) as reader:
        overview = reader.read_overview(settings.mask_mpp)
    with ThreadPoolExecutor(1) as pool:  # the thumbnail is encoded while the mask is computed
        thumbnail = pool.submit(_write_png, overview, thumbnail_png)
        mask = tissue_mask(overview, settings)
        _write_png(mask.astype(np.uint8) * 255, mask_png)
        thumbnail.result()
    area_mm2 = round(float(mask.sum()) * (settings.mask_mpp / 1000) ** 2, 4)
    write_json(
        {"slide_id": info.slide_id, "mask_mpp": settings.mask_mpp, "tissue_area_mm2": area_mm2}, qc_json
    )


def tile(
    *,
    info_json: str,
    mask_png: str,
    tissue_qc_json: str,
    resolution: Mapping[str, Any],
    tiling: Mapping[str, Any],
    min_tissue_fraction: float,
    store: str,
    grid_tsv: str,
    qc_json: str,
    threads: int,
) -> None:
    """Rule ``tile``: plan the tiling, list the grid with tissue fractions, write the kept tiles to Zarr."""
    policy = ResolutionPolicy.from_config(resolution, where="resolution")
    settings = TilingSettings.from_config(tiling, where="tiling")
    info = SlideInfo.from_dict(read_json(info_json))
    plan = plan_tiling(info, policy, settings.tile_size)
    log.info(
        "%s: level %d (%.4f um/px) at scale %.3f -> %d px tiles at %.4f um/px",
        info.slide_id,
        plan.level,
        plan.level_mpp,
        plan.scale,
        plan.tile_size,
        plan.tile_mpp,
    )
    mask = np.asarray(Image.open(mask_png)) > 0
    grid = tile_grid(plan, mask, read_json(tissue_qc_json)["mask_mpp"])
    grid["keep"] = grid["tissue_fraction"] >= min_tissue_fraction
    kept = grid[grid["keep"]]
    if kept.empty:
        log.warning("%s: no tissue tile found; later stages will carry it as empty", info.slide_id)
    codec = make_codec(settings.compressor, jpeg_quality=settings.jpeg_quality)
    index = write_tile_store(info=info, plan=plan, tiles=kept, path=store, codec=codec, threads=threads)
    write_table(grid, grid_tsv)
    qc = {
        "slide_id": info.slide_id,
        **plan.to_dict(),
        "tiles_total": len(grid),
        "tiles_kept": len(kept),
        "no_tissue": bool(kept.empty),
        "tiles_written": len(index),
        "blur_score": None if index.empty else round(float(index["sharpness"].median()), 3),
        "compressor": settings.compressor,
        "store_mb": round(TileStore(store).disk_bytes() / 1e6, 3),
    }
    write_json(qc, qc_json)


#: Columns of ``results/slides.tsv`` taken from the slide facts, in order.
AUDIT_INFO = (
    "slide_id",
    "path",
    "vendor",
    "width",
    "height",
    "mpp_x",
    "mpp_y",
    "mpp_source",
    "objective_power",
    "reader",
    "sha256",
)


def audit(
    *, info_jsons: Sequence[str], tissue_jsons: Sequence[str], tiling_jsons: Sequence[str], out_tsv: str
) -> None:
    """Rule ``audit``: one row per slide with its facts, the tiling plan and QC numbers."""
    rows = []
    for info_path, tissue_path, tile_path in zip(info_jsons, tissue_jsons, tiling_jsons, strict=True):
        info = read_json(info_path)
        row = {key: info[key] for key in AUDIT_INFO}
        row["levels"] = len(info["level_dimensions"])
        row["associated_images"] = ",".join(info["associated_images"])
        row.update({k: v for k, v in read_json(tissue_path).items() if k != "slide_id"})
        row.update({k: v for k, v in read_json(tile_path).items() if k != "slide_id"})
        slide_mm2 = info["width"] * info["mpp_x"] * info["height"] * info["mpp_y"] / 1e6
        row["tissue_share"] = round(row["tissue_area_mm2"] / slide_mm2, 4) if slide_mm2 else 0.0
        row["flags"] = ";".join(slide_flags(row))
        row["excluded"] = bool(row["no_tissue"])
        rows.append(row)
    write_table(pd.DataFrame(rows), out_tsv)


#: A tissue mask covering more of the slide than this is suspicious (a dark background, a bad threshold).
FULL_MASK = 0.95


def slide_flags(row: Mapping[str, Any]) -> list[str]:
    """What a reviewer should look at in a slide's QC numbers."""
    flags = []
    if row["no_tissue"]:
        flags.append("no tissue: excluded")
    if row["tissue_share"] > FULL_MASK:
        flags.append(f"mask covers {100 * row['tissue_share']:.0f}% of the slide: check the background")
    if row["mpp_source"] != "slide":
        flags.append(f"MPP from the {row['mpp_source']}")
    return flags
