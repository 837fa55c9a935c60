"""Rules of ``workflow/rules/ingest.smk``: ingest (slide facts, tissue detection, tiling) and the audit table.

Rule ``ingest`` runs three stages on one slide, in one job with one log: :func:`slide_info`,
:func:`tissue` and :func:`tile`. They are public so that benchmarks and tests time and check
each stage alone. What they write about the slide goes into its folder (``results/slides/<slide>/``,
the files of :data:`slidesnake.slide_folder.SLIDE_FILES`); the tiles go into the slide's Zarr store.
Reading slides and writing stores are imported inside the stages, so that rule ``audit`` (and its
code version) depends on neither.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ..audit import AUDIT_TABLE, audit_row
from ..checksums import file_sha256
from ..errors import SlideError
from ..io import atomic_path, read_json, write_json
from ..qc import QCSettings, with_flags
from ..quarantine import read_quarantine
from ..settings import ResolutionPolicy, TilingSettings, TissueSettings
from ..slide_folder import SLIDE_FILES, slide_file, slide_files
from ..store.tiles import TileStore
from ..wsi.info import SlideInfo
from ..wsi.resolution import TilePlan, empty_plan, plan_tiling

log = logging.getLogger(__name__)


def ingest(
    *,
    slide_path: str,
    slide_id: str,
    slide_settings: Mapping[str, Any],
    mpp_override: float | None,
    tissue_config: Mapping[str, Any],
    on_bad_slide: str,
    slide_dir: str,
    store: str,
    threads: int,
) -> None:
    """Rule ``ingest``: one slide's facts, thumbnail and tissue mask, tile grid and tile store.

    Parameters
    ----------
    slide_path, slide_id : str
        The slide file and its id in the sheet.
    slide_settings : mapping
        What is particular to the slide: ``sheet_mpp`` (its sheet's ``mpp``, or None) and the
        ``resolution`` and ``tiling`` settings of its home (its model's geometry).
    mpp_override : float or None
        Config ``resolution: mpp_override``.
    tissue_config : mapping
        Config ``tissue``.
    on_bad_slide : {'skip', 'fail'}
        A slide that cannot be used is carried through as excluded, or fails the job.
    slide_dir, store : str
        The slide folder (the files of :data:`SLIDE_FILES`) and the tile store to write.
    threads : int
        Tiling threads.
    """
    Path(slide_dir).mkdir(parents=True, exist_ok=True)
    files = {name: slide_file(slide_dir, name) for name in SLIDE_FILES}
    slide_info(
        slide_path=slide_path,
        slide_id=slide_id,
        sheet_mpp=slide_settings["sheet_mpp"],
        mpp_override=mpp_override,
        on_bad_slide=on_bad_slide,
        info_json=files["info"],
    )

    def tissue_and_tiles() -> None:
        tissue(
            info_json=files["info"],
            tissue=tissue_config,
            thumbnail_png=files["thumbnail"],
            mask_png=files["mask"],
            qc_json=files["tissue_qc"],
        )
        tile(
            info_json=files["info"],
            mask_png=files["mask"],
            tissue_qc_json=files["tissue_qc"],
            resolution=slide_settings["resolution"],
            tiling=slide_settings["tiling"],
            min_tissue_fraction=tissue_config["min_tissue_fraction"],
            on_bad_slide=on_bad_slide,
            store=store,
            grid_tsv=files["grid"],
            qc_json=files["tiling_qc"],
            threads=threads,
        )

    try:
        tissue_and_tiles()
    except SlideError as err:  # e.g. a file corrupt part-way: its first tiles read, a later one does not
        if on_bad_slide == "fail":
            raise
        info = SlideInfo.from_dict(read_json(files["info"]))
        log.warning("%s: excluded (config 'on_bad_slide: skip'): %s", slide_id, err.problem)
        write_json(dataclasses.replace(info, status="excluded", reason=err.problem).to_dict(), files["info"])
        tissue_and_tiles()  # an excluded slide's placeholders: nothing is read from the file


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
    """Stage 1 of rule ``ingest``: what the slide file is (levels, MPP, checksum, reader).

    A slide that cannot be used (unreadable, undecodable, no MPP) is, with ``on_bad_slide:
    skip``, recorded as excluded with the reason and carried through the workflow with empty
    outputs; with ``fail`` its job fails.
    """
    try:
        from ..wsi.probe import read_slide_info

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
    """Stage 2 of rule ``ingest``: low-resolution thumbnail and tissue mask, and the tissue area."""
    from ..tissue import background_of, dense_mask, ink_mask, tissue_mask
    from ..wsi.reader import SlideReader

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
        ink = ink_mask(overview, settings) if background == "bright" else np.zeros(overview.shape[:2], bool)
        mask = (
            np.zeros(overview.shape[:2], bool)
            if background == "unknown"
            else tissue_mask(overview, settings, background) & ~ink
        )
        _write_png(mask.astype(np.uint8) * 255, mask_png)
        thumbnail.result()
    if background == "dark":
        log.warning("%s: dark background (fluorescence?): tissue is what is brighter than it", info.slide_id)
    area_mm2 = round(float(mask.sum()) * (settings.mask_mpp / 1000) ** 2, 4)
    qc = {"slide_id": info.slide_id, "mask_mpp": settings.mask_mpp, "tissue_area_mm2": area_mm2}
    qc.update(background=background, mask_share=round(float(mask.mean()), 4))
    qc["ink_mm2"] = round(float(ink.sum()) * (settings.mask_mpp / 1000) ** 2, 4)
    dense = dense_mask(overview, mask) if background == "bright" else np.zeros_like(mask)
    qc["dense_share"] = round(float(dense.sum()) / max(1, int(mask.sum())), 4)
    write_json(qc, qc_json)


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
    """Stage 3 of rule ``ingest``: plan the tiling, list the grid's tissue fractions, write the kept tiles.

    A slide excluded by :func:`slide_info`, smaller than one tile, or without tissue gets an empty
    store and ``status: excluded`` with the reason in its QC (``on_bad_slide: skip``); with
    ``fail`` the last two fail the job.
    """
    from ..store.codecs import make_codec
    from ..store.writer import write_empty_store, write_tile_store
    from ..tissue import GRID_TABLE, tile_grid

    policy = ResolutionPolicy.from_config(resolution, where="resolution")
    settings = TilingSettings.from_config(tiling, where="tiling")
    info = SlideInfo.from_dict(read_json(info_json))
    codec = make_codec(settings.compressor, jpeg_quality=settings.jpeg_quality)
    if info.status == "excluded":
        plan = empty_plan(policy, settings.tile_size)
        write_empty_store(info=info, plan=plan, path=store, codec=codec, reason=info.reason)
        GRID_TABLE.write(GRID_TABLE.empty(), grid_tsv)
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
    GRID_TABLE.write(grid, grid_tsv)
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
        "tiles_unreadable": int(written.attrs.get("unreadable_tiles", 0)),
        "unreadable_first": str(written.attrs.get("unreadable_first", "")),
        "blur_score": None if index.empty else round(float(index["sharpness"].median()), 3),
        "blur_score_p25": None if index.empty else round(float(index["sharpness"].quantile(0.25)), 3),
        "compressor": settings.compressor,
        "resampling": written.attrs["resampling"],
        "store_mb": round(written.disk_bytes() / 1e6, 3),
    }


def audit(
    *,
    slide_dirs: Sequence[str],
    out_tsv: str,
    qc: Mapping[str, Any],
    datasets: Mapping[str, str] | None = None,
    label_dirs: Sequence[str] = (),
) -> None:
    """Rule ``audit``: one row per slide: its status (and why excluded), facts, tiling plan and QC numbers.

    A slide that rule ``label_tiles`` quarantined for its annotations (the quarantine table of its
    labels folder, one of ``label_dirs``) is ``excluded`` with that reason, unless ingest already
    excluded it (then ingest's reason stands). The flags are :func:`slidesnake.qc.study_flags`', each slide
    compared with the slides of its dataset (`datasets`: slide id -> dataset; without it, the whole study).
    """
    quarantined = read_quarantine(label_dirs)
    rows = []
    files = (slide_files(slide_dirs, name) for name in ("info", "tissue_qc", "tiling_qc"))
    for info_path, tissue_path, tile_path in zip(*files, strict=True):
        info = read_json(info_path)
        slide_id = info["slide_id"]
        rows.append(
            audit_row(
                info,
                read_json(tissue_path),
                read_json(tile_path),
                dataset=(datasets or {}).get(slide_id, ""),
                quarantined=quarantined.get(slide_id),
            )
        )
    AUDIT_TABLE.write(with_flags(rows, QCSettings.from_config(qc, where="qc")), out_tsv)
