"""Rules of ``workflow/rules/ingest.smk``: slide facts, tissue detection, tiling, the audit table."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ..checksums import file_sha256
from ..errors import SlideError
from ..io import atomic_path, read_json, write_json, write_table
from ..settings import ResolutionPolicy, TilingSettings, TissueSettings
from ..store import TileStore, make_codec, write_tile_store
from ..store.writer import write_empty_store
from ..tissue import GRID_COLUMNS, background_of, tile_grid, tissue_mask
from ..wsi import SlideInfo, SlideReader, TilePlan, plan_tiling, read_slide_info
from ..wsi.resolution import empty_plan

log = logging.getLogger(__name__)


def _write_png(image: np.ndarray, path: str) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def slide_info(
    *,
    slide_path: str,
    slide_id: str,
    sheet_mpp: float | None,
    mpp_override: float | None,
    on_bad_slide: str,
    info_json: str,
) -> SlideInfo:
    """Rule ``slide_info``: what the slide file is (levels, MPP, checksum, reader).

    A slide that cannot be used (unreadable, undecodable, no MPP) is, with ``on_bad_slide:
    skip``, recorded as excluded with the reason and carried through the workflow with empty
    outputs; with ``fail`` its job fails.
    """
    try:
        info = read_slide_info(slide_path, slide_id, sheet_mpp=sheet_mpp, mpp_override=mpp_override)
    except SlideError as err:
        if on_bad_slide == "fail":
            raise
        log.warning("%s: excluded (config 'on_bad_slide: skip'): %s", slide_id, err.problem)
        digest = file_sha256(slide_path) if Path(slide_path).is_file() else ""
        info = SlideInfo.excluded(slide_id, slide_path, err.problem, sha256=digest)
        write_json(info.to_dict(), info_json)
        return info
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
    if info.status == "excluded":  # nothing to read: a placeholder thumbnail and an empty mask
        overview = np.full((64, 64, 3), 200, np.uint8)
        background = "unknown"
    else:
        with SlideReader(info) as reader:
            overview = reader.read_overview(settings.mask_mpp)
        background = background_of(overview) if settings.background == "auto" else settings.background
    with ThreadPoolExecutor(1) as pool:  # the thumbnail is encoded while the mask is computed
        thumbnail = pool.submit(_write_png, overview, thumbnail_png)
        mask = (
            np.zeros(overview.shape[:2], bool)
            if background == "unknown"
            else tissue_mask(overview, settings, background)
        )
        _write_png(mask.astype(np.uint8) * 255, mask_png)
        thumbnail.result()
    if background == "dark":
        log.warning("%s: dark background (fluorescence?): tissue is what is brighter than it", info.slide_id)
    area_mm2 = round(float(mask.sum()) * (settings.mask_mpp / 1000) ** 2, 4)
    qc = {"slide_id": info.slide_id, "mask_mpp": settings.mask_mpp, "tissue_area_mm2": area_mm2}
    write_json({**qc, "background": background, "mask_share": round(float(mask.mean()), 4)}, qc_json)


def tile(
    *,
    info_json: str,
    mask_png: str,
    tissue_qc_json: str,
    resolution: Mapping[str, Any],
    tiling: Mapping[str, Any],
    min_tissue_fraction: float,
    on_bad_slide: str,
    store: str,
    grid_tsv: str,
    qc_json: str,
    threads: int,
) -> None:
    """Rule ``tile``: plan the tiling, list the grid with tissue fractions, write the kept tiles to Zarr.

    A slide excluded by ``slide_info``, smaller than one tile, or without tissue gets an empty
    store and ``status: excluded`` with the reason in its QC (``on_bad_slide: skip``); with
    ``fail`` the last two fail the job.
    """
    policy = ResolutionPolicy.from_config(resolution, where="resolution")
    settings = TilingSettings.from_config(tiling, where="tiling")
    info = SlideInfo.from_dict(read_json(info_json))
    codec = make_codec(settings.compressor, jpeg_quality=settings.jpeg_quality)
    if info.status == "excluded":
        plan = empty_plan(policy, settings.tile_size)
        write_empty_store(info=info, plan=plan, path=store, codec=codec, reason=info.reason)
        write_table(pd.DataFrame(columns=[*GRID_COLUMNS, "keep"]), grid_tsv)
        write_json(
            _tiling_qc(info, plan, pd.DataFrame(), pd.DataFrame(), store, settings, info.reason), qc_json
        )
        return
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
    reason = _exclusion(info, plan, grid, kept, on_bad_slide)
    if reason:
        log.warning("%s: excluded (config 'on_bad_slide: skip'): %s", info.slide_id, reason)
        write_empty_store(info=info, plan=plan, path=store, codec=codec, reason=reason)
        index = pd.DataFrame()
    else:
        index = write_tile_store(
            info=info,
            plan=plan,
            tiles=kept,
            path=store,
            codec=codec,
            threads=threads,
            jpeg_dct_scaling=settings.jpeg_dct_scaling,
        )
    write_table(grid, grid_tsv)
    write_json(_tiling_qc(info, plan, grid, index, store, settings, reason), qc_json)


def _exclusion(
    info: SlideInfo, plan: TilePlan, grid: pd.DataFrame, kept: pd.DataFrame, on_bad_slide: str
) -> str:
    """Why a readable slide cannot be used (empty: it can); with ``fail`` that is an error."""
    reason = ""
    if grid.empty:
        size = f"{plan.target_width} x {plan.target_height} px at {plan.tile_mpp:.3f} um/px"
        reason = f"smaller than one tile: {size}, tiles of {plan.tile_size} px"
    elif kept.empty:
        reason = "no tissue tile found (config 'tissue' settings; the mask is in results/slides/<slide>/)"
    if reason and on_bad_slide == "fail":
        raise SlideError(info.slide_id, info.path, reason + " (config 'on_bad_slide: fail')")
    return reason


def _tiling_qc(
    info: SlideInfo,
    plan: TilePlan,
    grid: pd.DataFrame,
    index: pd.DataFrame,
    store: str,
    settings: TilingSettings,
    reason: str,
) -> dict:
    kept = int(grid["keep"].sum()) if len(grid) else 0
    written = TileStore(store)
    return {
        "slide_id": info.slide_id,
        "status": "excluded" if reason else "ok",
        "reason": reason,
        **plan.to_dict(),
        "tiles_total": len(grid),
        "tiles_kept": kept,
        "no_tissue": kept == 0,
        "tiles_written": len(index),
        "blur_score": None if index.empty else round(float(index["sharpness"].median()), 3),
        "compressor": settings.compressor,
        "resampling": written.attrs["resampling"],
        "store_mb": round(written.disk_bytes() / 1e6, 3),
    }


#: Columns of ``results/slides.tsv`` taken from the slide facts, in order.
AUDIT_INFO = (
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
    """Rule ``audit``: one row per slide: its status (and why excluded), facts, tiling plan and QC numbers."""
    rows = []
    for info_path, tissue_path, tile_path in zip(info_jsons, tissue_jsons, tiling_jsons, strict=True):
        info = read_json(info_path)
        tiling = read_json(tile_path)
        row = {"slide_id": info["slide_id"], "status": tiling["status"], "reason": tiling["reason"]}
        row.update({key: info[key] for key in AUDIT_INFO})
        row["levels"] = len(info["level_dimensions"])
        row["associated_images"] = ",".join(info["associated_images"])
        row.update({k: v for k, v in read_json(tissue_path).items() if k != "slide_id"})
        row.update({k: v for k, v in tiling.items() if k != "slide_id"})
        row["tissue_share"] = row.pop("mask_share", 0.0)
        row["flags"] = ";".join(slide_flags(row))
        row["excluded"] = row["status"] == "excluded"
        rows.append(row)
    write_table(pd.DataFrame(rows), out_tsv)


#: A tissue mask covering more of the slide than this is suspicious (a dark background, a bad threshold).
FULL_MASK = 0.95


def slide_flags(row: Mapping[str, Any]) -> list[str]:
    """What a reviewer should look at in a slide's QC numbers."""
    flags = []
    if row["status"] == "excluded":
        flags.append(f"excluded: {row['reason']}")
    if row.get("background") == "dark":
        flags.append("dark background (fluorescence?)")
    if row["tissue_share"] > FULL_MASK:
        flags.append(f"mask covers {100 * row['tissue_share']:.0f}% of the slide: check the background")
    if row["mpp_source"] not in ("slide", "none"):
        flags.append(f"MPP from the {row['mpp_source']}")
    return flags
