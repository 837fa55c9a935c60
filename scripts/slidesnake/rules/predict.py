"""Rules of ``workflow/rules/predict.smk``: slides through a model, maps, exports; images of patch sets."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ..annotation_files import read_annotations, rings_um
from ..annotations import slide_tile_labels
from ..entries import ENTRIES_TABLE, PREDICTIONS_TABLE
from ..errors import AnnotationError, SlideError
from ..exports.overlay import write_overlay
from ..exports.qupath import qupath_names, write_qupath_geojson
from ..io import read_json, write_json
from ..model.card import ModelCard
from ..model.classifier import probabilities
from ..pixels import store_entries
from ..plots.slides import SlideView, class_map_figure, excluded_figure, figure_thumbnail, heatmap_figure
from ..settings import LabelSettings, PredictionSettings
from ..slide_scores import slide_scores
from ..store.maps import MapGeometry, stitch, write_probability_map
from ..store.tiles import TileStore
from ..wsi.info import SlideInfo

log = logging.getLogger(__name__)


def _check_geometry(tiles: TileStore, card: ModelCard, tolerance: float) -> None:
    """Refuse a store whose tiles are not what the model was trained on."""
    plan = tiles.plan
    problem = card.geometry_problem(tile_size=plan.tile_size, tile_mpp=plan.tile_mpp, tolerance=tolerance)
    if problem:
        raise SlideError(tiles.slide_id, tiles.path, problem)


def _predicted_tiles(
    *,
    model_path: str,
    card: ModelCard,
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
        _check_geometry(tiles_store, card, tolerance)
    entries = store_entries(store, stride)
    scale = tiles_store.plan.level0_per_target
    tiles = entries[["item", "row", "col", "y", "x", "aligned"]].assign(
        x0=(entries["x"] * scale).round(2), y0=(entries["y"] * scale).round(2)
    )
    tiles = tiles.join(probabilities(model_path, card, entries, classes, None, threads))
    log.info(
        "%s: %d tiles predicted (%d aligned)", tiles_store.slide_id, len(tiles), int(tiles["aligned"].sum())
    )
    return tiles, tiles_store


def _scored_slide(
    *,
    model_path: str,
    card: ModelCard,
    store: str,
    thumbnail_png: str,
    annotation_files: Sequence[str],
    labels: Mapping[str, Any] | None,
    slide_label: str | None,
    model: str,
    classes: Sequence[str],
    positive_class: str,
    settings: PredictionSettings,
    stride: int | None,
    tolerance: float,
    tiles_tsv: str,
    scores_json: str,
    threads: int,
) -> tuple[pd.DataFrame, TileStore, dict, list, Image.Image]:
    """A slide through its model, its tile table and scores written (the steps predict and predict_external
    share); returns the tiles, the tile store, the scores, the annotation regions and the figures' thumbnail.
    """
    with ThreadPoolExecutor(1) as background:  # the figures' thumbnail is made while the model runs
        thumbnail = background.submit(lambda: figure_thumbnail(Image.open(thumbnail_png)))
        tiles, tiles_store = _predicted_tiles(
            model_path=model_path,
            card=card,
            store=store,
            classes=classes,
            stride=stride,
            tolerance=tolerance,
            threads=threads,
        )
    PREDICTIONS_TABLE.write(tiles, tiles_tsv)
    slide_labels, regions = _slide_labels(tiles_store, labels, annotation_files, slide_label)
    scores = slide_scores(
        tiles, tiles_store, model=model, positive_class=positive_class, settings=settings, labels=slide_labels
    )
    write_json(scores, scores_json)
    return tiles, tiles_store, scores, regions, thumbnail.result()


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
    return tuple(rings_um([region for name, region in regions if name in positive], mpp))


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


def _figures_and_geojson(
    tiles: pd.DataFrame,
    tiles_store: TileStore,
    *,
    grid: np.ndarray,
    geometry: MapGeometry,
    classes: Sequence[str],
    positive_class: str,
    settings: PredictionSettings,
    scores: Mapping[str, Any],
    regions: Sequence[tuple[str, Any]],
    labels: Mapping[str, Any] | None,
    info_json: str,
    thumbnail: Image.Image,
    heading: str,
    heatmap_jpg: str,
    classmap_jpg: str,
    qupath_geojson: str,
) -> SlideInfo:
    """A predicted slide's heatmap and class map (its positive-class annotations outlined) and its QuPath
    GeoJSON; the slide's facts are returned for what else is drawn on them."""
    info = SlideInfo.from_dict(read_json(info_json))
    slide = tiles_store.slide_id
    view = SlideView(
        thumbnail=thumbnail,
        width_um=info.width * info.mpp_x,
        height_um=info.height * info.mpp_y,
        map_pixel_um=geometry.cell_um,
        outlines=_outlines(regions, labels, positive_class, (info.mpp_x, info.mpp_y)),
    )
    positive = grid[..., list(classes).index(positive_class)]
    if tiles_store.status == "excluded":
        for path in (heatmap_jpg, classmap_jpg):
            excluded_figure(view.thumbnail, title=f"{slide}: excluded", reason=tiles_store.reason, path=path)
    else:
        score = f"score {scores['score']:.2f} ({settings.slide_score} of P({positive_class}))"
        heatmap_figure(
            view, positive, positive_class=positive_class, title=f"{heading}: {score}", path=heatmap_jpg
        )
        class_map_figure(
            view, grid, classes=classes, title=f"{heading}: most probable class", path=classmap_jpg
        )
    write_qupath_geojson(
        tiles,
        positive,
        qupath_geojson,
        slide_id=slide,
        geometry=geometry,
        classes=classes,
        positive_class=positive_class,
        threshold=settings.threshold,
        mpp=(info.mpp_x, info.mpp_y),
        names=qupath_names(labels),
    )
    return info


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
    card = ModelCard.load(model_json)
    tiles, tiles_store, scores, regions, thumbnail = _scored_slide(
        model_path=model_path,
        card=card,
        store=store,
        thumbnail_png=thumbnail_png,
        annotation_files=annotation_files,
        labels=labels,
        slide_label=slide_label,
        model=model,
        classes=classes,
        positive_class=positive_class,
        settings=settings,
        stride=settings.stride,
        tolerance=tolerance,
        tiles_tsv=tiles_tsv,
        scores_json=scores_json,
        threads=threads,
    )
    plan = tiles_store.plan
    geometry = MapGeometry(cell=settings.stride or plan.tile_size, plan=plan)
    grid = stitch(tiles, geometry, [f"p_{c}" for c in classes])
    slide = tiles_store.slide_id
    write_probability_map(grid, map_store, slide_id=slide, geometry=geometry, classes=classes)
    positive = grid[..., list(classes).index(positive_class)]
    info = _figures_and_geojson(
        tiles,
        tiles_store,
        grid=grid,
        geometry=geometry,
        classes=classes,
        positive_class=positive_class,
        settings=settings,
        scores=scores,
        regions=regions,
        labels=labels,
        info_json=info_json,
        thumbnail=thumbnail,
        heading=f"{slide} ({card.split_of(slide)})",
        heatmap_jpg=heatmap_jpg,
        classmap_jpg=classmap_jpg,
        qupath_geojson=qupath_geojson,
    )
    mpp = (info.mpp_x, info.mpp_y)
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
    cohort: str,
    info_json: str,
    thumbnail_png: str,
    heatmap_jpg: str,
    classmap_jpg: str,
    qupath_geojson: str,
    threads: int,
) -> None:
    """Rule ``predict_external``: a slide of another dataset through a cohort's model: tiles, scores, and
    its heatmap, class map and QuPath GeoJSON under the cohort's folder (how the model sees another site)."""
    from ..model.fit import set_threads

    set_threads(threads)
    settings = PredictionSettings.from_config(prediction, where="prediction")
    tiles, tiles_store, scores, regions, thumbnail = _scored_slide(
        model_path=model_path,
        card=ModelCard.load(model_json),
        store=store,
        thumbnail_png=thumbnail_png,
        annotation_files=annotation_files,
        labels=labels,
        slide_label=slide_label,
        model=model,
        classes=classes,
        positive_class=positive_class,
        settings=settings,
        stride=None,
        tolerance=tolerance,
        tiles_tsv=tiles_tsv,
        scores_json=scores_json,
        threads=threads,
    )
    geometry = MapGeometry(cell=tiles_store.plan.tile_size, plan=tiles_store.plan)
    _figures_and_geojson(
        tiles,
        tiles_store,
        grid=stitch(tiles, geometry, [f"p_{c}" for c in classes]),
        geometry=geometry,
        classes=classes,
        positive_class=positive_class,
        settings=settings,
        scores=scores,
        regions=regions,
        labels=labels,
        info_json=info_json,
        thumbnail=thumbnail,
        heading=f"{tiles_store.slide_id} (cohort {cohort}, model {model})",
        heatmap_jpg=heatmap_jpg,
        classmap_jpg=classmap_jpg,
        qupath_geojson=qupath_geojson,
    )


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
    entries = ENTRIES_TABLE.read(entries_tsv)
    table = entries[["item", "patient_id", "label", "split"]].join(
        probabilities(model_path, ModelCard.load(model_json), entries, classes, image_size, threads)
    )
    PREDICTIONS_TABLE.write(table, out_tsv)
