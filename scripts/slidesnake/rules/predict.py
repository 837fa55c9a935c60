"""Rules of ``workflow/rules/predict.smk``: slides through a model, maps, exports; images of patch sets."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ..annotation_files import read_annotations
from ..annotations import slide_tile_labels
from ..entries import read_entries
from ..errors import AnnotationError, SlideError
from ..exports.overlay import write_overlay
from ..exports.qupath import write_qupath_geojson
from ..io import read_json, write_json, write_table
from ..metrics import agreement, slide_score
from ..model.classifier import probabilities
from ..pixels import store_entries
from ..plots.slides import SlideView, class_map_figure, excluded_figure, figure_thumbnail, heatmap_figure
from ..settings import LabelSettings, PredictionSettings
from ..store.maps import MapGeometry, stitch, write_probability_map
from ..store.tiles import TileStore
from ..wsi.info import SlideInfo

log = logging.getLogger(__name__)


def _check_geometry(tiles: TileStore, model_config: Mapping[str, Any], tolerance: float) -> None:
    """Refuse a store whose tiles are not what the model was trained on."""
    geometry = model_config["geometry"]
    plan = tiles.plan
    same_size = plan.tile_size == geometry["tile_size"]
    same_mpp = geometry["mpp"] is not None and abs(plan.tile_mpp / geometry["mpp"] - 1) <= tolerance
    if not (same_size and same_mpp):
        problem = (
            f"geometry mismatch: the model of dataset {model_config['dataset']!r} takes "
            f"{geometry['tile_size']} px tiles at {geometry['mpp']} um/px, but this slide's store holds "
            f"{plan.tile_size} px tiles at {plan.tile_mpp:.4f} um/px; rerun its ingest job"
        )
        raise SlideError(tiles.slide_id, tiles.path, problem)


def _predicted_tiles(
    *,
    model_path: str,
    model_json: str,
    store: str,
    classes: Sequence[str],
    stride: int | None,
    tolerance: float,
    threads: int,
) -> tuple[pd.DataFrame, TileStore]:
    tiles_store = TileStore(store)
    if tiles_store.status == "excluded":
        log.warning("%s: excluded (%s): no tiles to predict", tiles_store.slide_id, tiles_store.reason)
    else:
        _check_geometry(tiles_store, read_json(model_json), tolerance)
    entries = store_entries(store, stride)
    scale = tiles_store.plan.level0_per_target
    tiles = entries[["item", "row", "col", "y", "x", "aligned"]].assign(
        x0=(entries["x"] * scale).round(2), y0=(entries["y"] * scale).round(2)
    )
    tiles = tiles.join(probabilities(model_path, model_json, entries, classes, None, threads))
    log.info(
        "%s: %d tiles predicted (%d aligned)", tiles_store.slide_id, len(tiles), int(tiles["aligned"].sum())
    )
    return tiles, tiles_store


def _scores(
    tiles: pd.DataFrame,
    tiles_store: TileStore,
    *,
    model: str,
    positive_class: str,
    settings: PredictionSettings,
    labels: pd.DataFrame | None,
) -> dict:
    """Slide scores, and with the slide's tile labels its label and the agreement of its map with them."""
    aligned = tiles[tiles["aligned"]]
    p = aligned[f"p_{positive_class}"].to_numpy(float)
    plan = tiles_store.plan
    tile_mm2 = (plan.tile_size * plan.tile_mpp / 1000) ** 2
    called = p >= settings.threshold
    scores = {
        "slide_id": tiles_store.slide_id,
        "status": tiles_store.status,
        "reason": tiles_store.reason,
        "model": model,
        "positive_class": positive_class,
        "tiles": len(aligned),
        "score": round(slide_score(p, settings.slide_score), 5) if len(p) else None,
        "slide_score": settings.slide_score,
        "threshold": settings.threshold,
        "mean_probability": round(float(p.mean()), 5) if len(p) else None,
        "max_probability": round(float(p.max()), 5) if len(p) else None,
        "positive_fraction": round(float(called.mean()), 5) if len(p) else None,
        "positive_area_mm2": round(float(called.sum()) * tile_mm2, 4),
        "label_positive": None,
        "dice": None,
        "iou": None,
    }
    if labels is None:
        return scores
    scores["label_positive"] = bool((labels["label"] == positive_class).any())
    fraction = f"fraction_{positive_class}"
    if fraction in labels:
        joined = aligned.merge(labels[["y", "x", fraction]], on=["y", "x"], how="left")
        dice, iou = agreement(
            joined[f"p_{positive_class}"] >= settings.threshold, joined[fraction].fillna(0.0)
        )
        scores["dice"] = None if np.isnan(dice) else round(dice, 4)
        scores["iou"] = None if np.isnan(iou) else round(iou, 4)
    return scores


def _outlines(
    regions: Sequence[tuple[str, Any]],
    labels: Mapping[str, Any] | None,
    positive_class: str,
    mpp: tuple[float, float],
) -> tuple[np.ndarray, ...]:
    """Rings of the slide's annotation regions of the positive class, in microns (none without any)."""
    if not regions or not labels:
        return ()
    positive = {name for name, cls in labels["annotation_classes"].items() if cls == positive_class}
    rings = []
    for name, region in regions:
        if name not in positive:
            continue
        for polygon in getattr(region, "geoms", [region]):
            if polygon.geom_type != "Polygon":
                continue
            for ring in [polygon.exterior, *polygon.interiors]:
                rings.append(np.asarray(ring.coords) * np.asarray(mpp))
    return tuple(rings)


def _slide_labels(
    tiles_store: TileStore,
    labels: Mapping[str, Any] | None,
    annotation_files: Sequence[str],
    slide_label: str | None,
) -> tuple[pd.DataFrame | None, list]:
    """The slide's tile labels, as rule ``label_tiles`` gives them, and its annotation regions.

    The file is read once, for both. The labels are None when its home has no labels, or when
    label_tiles quarantined the slide for its annotations (its map is made, but not compared; its
    regions are still outlined where the file could be read).
    """
    if not labels:
        return None, []
    settings = LabelSettings.from_config(labels, where="labels")
    path = annotation_files[0] if annotation_files else None
    regions: list = []
    try:
        if path and settings.source == "annotations":
            regions = read_annotations(path, tiles_store.slide_id)
        table = slide_tile_labels(
            tiles_store, settings, regions=regions, annotation_path=path, slide_label=slide_label
        )
    except AnnotationError as err:
        log.warning(
            "%s: quarantined for its annotations, its map has no labels: %s", err.slide_id, err.problem
        )
        return None, regions
    return table, regions


def _split_of(model_json: str, slide_id: str) -> str:
    """The split a slide was in when its model was trained (``external``: a slide it never saw)."""
    return str(read_json(model_json).get("slide_splits", {}).get(slide_id, "external"))


def predict(
    *,
    model_path: str,
    model_json: str,
    store: str,
    info_json: str,
    thumbnail_png: str,
    annotation_files: Sequence[str],
    labels: Mapping[str, Any] | None,
    slide_label: str | None,
    model: str,
    classes: Sequence[str],
    positive_class: str,
    prediction: Mapping[str, Any],
    tolerance: float,
    tiles_tsv: str,
    scores_json: str,
    map_store: str,
    heatmap_jpg: str,
    classmap_jpg: str,
    qupath_geojson: str,
    overlay_tif: str,
    threads: int,
) -> None:
    """Rule ``predict``: a slide through its model; tile table, class maps, heatmaps, scores, exports.

    The heatmap's title gives the slide's split and score; its annotations of the positive class
    (when its home labels from annotations) are outlined on both panels. A slide of a labelled home
    is labelled here as rule ``label_tiles`` labels it (its annotations or ``slide_label``), for the
    agreement of its map with its labels.
    """
    from ..model.fit import set_threads

    set_threads(threads)
    settings = PredictionSettings.from_config(prediction, where="prediction")
    with ThreadPoolExecutor(1) as background:  # the figures' thumbnail is made while the model runs
        thumbnail = background.submit(lambda: figure_thumbnail(Image.open(thumbnail_png)))
        tiles, tiles_store = _predicted_tiles(
            model_path=model_path,
            model_json=model_json,
            store=store,
            classes=classes,
            stride=settings.stride,
            tolerance=tolerance,
            threads=threads,
        )
    write_table(tiles, tiles_tsv)
    plan = tiles_store.plan
    geometry = MapGeometry(cell=settings.stride or plan.tile_size, plan=plan)
    grid = stitch(tiles, geometry, [f"p_{c}" for c in classes])
    slide = tiles_store.slide_id
    write_probability_map(grid, map_store, slide_id=slide, geometry=geometry, classes=classes)
    positive = grid[..., list(classes).index(positive_class)]
    slide_labels, regions = _slide_labels(tiles_store, labels, annotation_files, slide_label)
    scores = _scores(
        tiles,
        tiles_store,
        model=model,
        positive_class=positive_class,
        settings=settings,
        labels=slide_labels,
    )
    write_json(scores, scores_json)
    info = SlideInfo.from_dict(read_json(info_json))
    view = SlideView(
        thumbnail=thumbnail.result(),
        width_um=info.width * info.mpp_x,
        height_um=info.height * info.mpp_y,
        map_pixel_um=geometry.cell_um,
        outlines=_outlines(regions, labels, positive_class, (info.mpp_x, info.mpp_y)),
    )
    split = _split_of(model_json, slide)
    if tiles_store.status == "excluded":
        for path in (heatmap_jpg, classmap_jpg):
            excluded_figure(view.thumbnail, title=f"{slide}: excluded", reason=tiles_store.reason, path=path)
    else:
        score = f"score {scores['score']:.2f} ({settings.slide_score} of P({positive_class}))"
        heatmap_figure(
            view,
            positive,
            positive_class=positive_class,
            title=f"{slide} ({split}): {score}",
            path=heatmap_jpg,
        )
        class_map_figure(
            view, grid, classes=classes, title=f"{slide} ({split}): most probable class", path=classmap_jpg
        )
    mpp = (info.mpp_x, info.mpp_y)
    write_qupath_geojson(
        tiles,
        positive,
        qupath_geojson,
        slide_id=slide,
        geometry=geometry,
        classes=classes,
        positive_class=positive_class,
        threshold=settings.threshold,
        mpp=mpp,
    )
    write_overlay(
        positive,
        overlay_tif,
        geometry=geometry,
        width=max(1, info.width),  # an unreadable slide: one NaN pixel
        height=max(1, info.height),
        mpp=mpp if info.status == "ok" else (plan.tile_mpp, plan.tile_mpp),
        name=f"{slide} P({positive_class})",
    )


def predict_external(
    *,
    model_path: str,
    model_json: str,
    store: str,
    annotation_files: Sequence[str],
    labels: Mapping[str, Any] | None,
    slide_label: str | None,
    model: str,
    classes: Sequence[str],
    positive_class: str,
    prediction: Mapping[str, Any],
    tolerance: float,
    tiles_tsv: str,
    scores_json: str,
    threads: int,
) -> None:
    """Rule ``predict_external``: a slide of another dataset through a cohort's model; tiles and scores."""
    from ..model.fit import set_threads

    set_threads(threads)
    settings = PredictionSettings.from_config(prediction, where="prediction")
    tiles, tiles_store = _predicted_tiles(
        model_path=model_path,
        model_json=model_json,
        store=store,
        classes=classes,
        stride=None,
        tolerance=tolerance,
        threads=threads,
    )
    write_table(tiles, tiles_tsv)
    scores = _scores(
        tiles,
        tiles_store,
        model=model,
        positive_class=positive_class,
        settings=settings,
        labels=_slide_labels(tiles_store, labels, annotation_files, slide_label)[0],
    )
    write_json(scores, scores_json)


def predict_patches(
    *,
    model_path: str,
    model_json: str,
    entries_tsv: str,
    classes: Sequence[str],
    image_size: int,
    out_tsv: str,
    threads: int,
) -> None:
    """Rule ``predict_patches``: class probabilities of every image of a patch dataset."""
    from ..model.fit import set_threads

    set_threads(threads)
    entries = read_entries(entries_tsv)
    table = entries[["item", "patient_id", "label", "split"]].join(
        probabilities(model_path, model_json, entries, classes, image_size, threads)
    )
    write_table(table, out_tsv)
