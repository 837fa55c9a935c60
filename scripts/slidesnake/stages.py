"""One function per workflow rule: read the rule's inputs, call the library, write its outputs.

Every function takes plain paths and config values, so it runs the same from a
Snakemake script, a test or a notebook. Outputs are written atomically.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .io import atomic_path, read_json, read_table, write_json, write_table
from .slide import SlideInfo, SlideReader, read_slide_info
from .tiling import JPEG_QUALITY, write_tile_store
from .tissue import tile_grid, tissue_mask

log = logging.getLogger(__name__)


def slide_info(
    slide_path: str, slide_id: str, info_json: str, resolution: dict, sheet_mpp: float | None = None
) -> SlideInfo:
    """Rule ``slide_info``: record a slide's metadata and its resolution decision."""
    info = read_slide_info(
        slide_path,
        slide_id,
        target_mpp=resolution["target_mpp"],
        tolerance=resolution["tolerance"],
        sheet_mpp=sheet_mpp,
        config_mpp=resolution.get("mpp_override"),
    )
    log.info(
        "%s: %s, %d levels, %.4f um/px (%s); reading level %d at scale %.3f with %s",
        slide_id,
        info.vendor,
        len(info.level_dimensions),
        info.mpp_x,
        info.mpp_source,
        info.level,
        info.scale,
        info.reader,
    )
    write_json(info.to_dict(), info_json)
    return info


def detect_tissue(
    info_json: str,
    tissue: dict,
    tile_size: int,
    thumbnail_png: str,
    mask_png: str,
    grid_tsv: str,
    qc_json: str,
) -> None:
    """Rule ``tissue``: low-resolution tissue mask, tile grid with tissue fractions, QC numbers."""
    info = SlideInfo.from_dict(read_json(info_json))
    mpp = tissue["mask_mpp"]
    with SlideReader(info) as reader:
        overview = reader.read_overview(mpp)

    def write_png(image: np.ndarray, path: str) -> None:
        with atomic_path(path) as tmp:
            Image.fromarray(image).save(tmp, format="PNG")

    with ThreadPoolExecutor(1) as pool:  # the thumbnail is encoded while the mask is computed
        thumbnail = pool.submit(write_png, overview, thumbnail_png)
        mask = tissue_mask(
            overview,
            mpp,
            tissue["max_brightness"],
            tissue["min_saturation"],
            tissue["closing_um"],
            tissue["min_object_um2"],
        )
        grid = tile_grid(info, tile_size, mask, mpp)
        grid["keep"] = grid["tissue_fraction"] >= tissue["min_tissue_fraction"]
        qc = {
            "slide_id": info.slide_id,
            "tissue_area_mm2": round(float(mask.sum()) * (mpp / 1000) ** 2, 4),
            "tiles_total": len(grid),
            "tiles_kept": int(grid["keep"].sum()),
            "no_tissue": bool(grid["keep"].sum() == 0),
        }
        if qc["no_tissue"]:
            log.warning("%s: no tissue tile found; later stages will carry it as empty", info.slide_id)
        write_png(mask.astype(np.uint8) * 255, mask_png)
        write_table(grid, grid_tsv)
        thumbnail.result()
    write_json(qc, qc_json)


def tile_slide(
    info_json: str, grid_tsv: str, tiling: dict, store: str, qc_json: str, threads: int = 1
) -> None:
    """Rule ``tile``: decode the kept tiles into the slide's Zarr store; QC: tiles, blur score, size."""
    info = SlideInfo.from_dict(read_json(info_json))
    grid = read_table(grid_tsv)
    kept = grid[grid["keep"]]
    index = write_tile_store(
        info,
        kept,
        tiling["tile_size"],
        store,
        tiling["compressor"],
        threads,
        tiling.get("jpeg_quality", JPEG_QUALITY),
    )
    store_bytes = sum(p.stat().st_size for p in Path(store).rglob("*") if p.is_file())
    write_json(
        {
            "slide_id": info.slide_id,
            "tiles_written": len(index),
            "blur_score": None if index.empty else round(float(index["sharpness"].median()), 3),
            "compressor": tiling["compressor"],
            "store_mb": round(store_bytes / 1e6, 3),
        },
        qc_json,
    )


def audit_table(info_jsons: list[str], tissue_jsons: list[str], tile_jsons: list[str], out_tsv: str) -> None:
    """Rule ``audit``: one row per slide with metadata, the resolution decision and QC numbers."""
    rows = []
    for info_path, tissue_path, tile_path in zip(info_jsons, tissue_jsons, tile_jsons, strict=True):
        info = SlideInfo.from_dict(read_json(info_path)).to_dict()
        row = {
            key: info[key]
            for key in (
                "slide_id",
                "path",
                "vendor",
                "width",
                "height",
                "mpp_x",
                "mpp_y",
                "mpp_source",
                "objective_power",
                "target_mpp",
                "level",
                "level_mpp",
                "scale",
                "tile_mpp",
                "level0_per_target",
                "target_width",
                "target_height",
                "reader",
                "sha256",
            )
        }
        row["levels"] = len(info["level_dimensions"])
        row["associated_images"] = ",".join(info["associated_images"])
        row.update({k: v for k, v in read_json(tissue_path).items() if k != "slide_id"})
        row.update({k: v for k, v in read_json(tile_path).items() if k != "slide_id"})
        rows.append(row)
    write_table(pd.DataFrame(rows), out_tsv)
