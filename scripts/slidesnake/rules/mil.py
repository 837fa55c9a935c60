"""Rules of ``workflow/rules/mil.smk``: slide-level learning on stored tile features.

``train_mil`` cross-validates attention MIL and the mean-pooling baseline (folds x seeds) on a dataset's
feature stores; ``mil_report`` evaluates them, checks attention against annotations, and writes every
slide's attention map, QuPath tiles and montage, and the dataset's page.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..annotation_files import read_annotations, rings_um
from ..errors import ModelError
from ..io import atomic_path, read_json, write_json
from ..mil.outputs import ATTENTION_TABLE, MIL_PREDICTIONS_TABLE
from ..mil.settings import MILSettings
from ..model.history import HISTORY_TABLE
from ..slide_folder import slide_file

log = logging.getLogger(__name__)

#: A bag is called positive at this probability of the positive class.
MIL_THRESHOLD = 0.5


def train_mil(
    *,
    dataset: str,
    splits_tsv: str,
    slides: Sequence[str],
    feature_stores: Sequence[str],
    classes: Sequence[str],
    mil: Mapping[str, Any],
    models_dir: str,
    predictions_tsv: str,
    attention_tsv: str,
    history_tsv: str,
    threads: int,
) -> None:
    """Rule ``train_mil``: out-of-fold predictions and attention of every fold x pooling x seed.

    The networks are kept under ``models_dir`` (``fold<k>_<pooling>_seed<s>.keras``); every output is
    written whole or not at all.
    """
    from ..mil.bags import read_bags
    from ..mil.crossval import crossvalidate
    from ..model.fit import set_determinism, set_threads
    from ..splits import SPLITS_TABLE

    set_threads(threads)
    settings = MILSettings.from_config(mil, where=f"datasets: {dataset}: mil")
    set_determinism(settings.seed)
    splits = SPLITS_TABLE.read(splits_tsv)
    stores = dict(zip(slides, feature_stores, strict=True))
    missing = sorted(set(splits["item"]) - set(stores))
    if missing:
        raise ModelError(f"dataset {dataset!r}: no feature store for slides {missing}")
    folds = splits.groupby("item")["fold"].first()
    if folds[folds >= 0].nunique() < 2:
        raise ModelError(
            f"dataset {dataset!r}: MIL is cross-validated and needs mil: folds of 2 or more "
            f"(its splits have {folds[folds >= 0].nunique()} fold(s))"
        )
    bags = read_bags(splits[["item", "patient_id", "label"]], stores, bag=settings.bag, dataset=dataset)
    key = "item" if settings.bag == "slide" else "patient_id"
    bag_folds = splits.groupby(key)["fold"].first().to_dict()
    log.info(
        "%s: %d %s bags (%d tiles), %d folds x %d seeds x attention and mean pooling",
        dataset,
        len(bags),
        settings.bag,
        sum(len(b) for b in bags),
        folds[folds >= 0].nunique(),
        settings.seeds,
    )
    with atomic_path(models_dir) as folder:
        Path(folder).mkdir()
        predictions, attention, history = crossvalidate(
            bags,
            {str(k): int(v) for k, v in bag_folds.items()},
            classes=classes,
            settings=settings,
            models_dir=Path(folder),
        )
        write_json(
            {"dataset": dataset, "classes": list(classes), "mil": settings.to_dict()}, folder / "card.json"
        )
        MIL_PREDICTIONS_TABLE.write(predictions, predictions_tsv)
        ATTENTION_TABLE.write(attention, attention_tsv)
        HISTORY_TABLE.write(history, history_tsv)


def _outlines_um(path: str, slide_id: str, evidence: Sequence[str], mpp0: float) -> tuple[list, list]:
    """The slide's annotated regions of the `evidence` classes (level-0 geometries) and their rings in um."""
    if not path:
        return [], []
    regions = [geometry for name, geometry in read_annotations(path, slide_id) if name in evidence]
    return regions, rings_um(regions, (mpp0, mpp0))


def mil_report(
    *,
    dataset: str,
    predictions_tsv: str,
    attention_tsv: str,
    slides: Sequence[str],
    slide_dirs: Sequence[str],
    tile_stores: Sequence[str],
    annotation_files: Mapping[str, str],
    classes: Sequence[str],
    positive_class: str,
    mil: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    metrics_tsv: str,
    mil_metrics_tsv: str,
    attention_check_tsv: str,
    roc_png: str,
    page_html: str,
    attention_dir: str,
) -> None:
    """Rule ``mil_report``: metrics, the attention check, every slide's attention outputs, the page.

    ``attention_dir`` gets, per slide, ``<slide>.jpg`` (the map), ``<slide>.geojson`` (QuPath tiles with
    the attention as measurements) and ``<slide>.tiles.jpg`` (the highest and lowest tiles).
    """
    from ..metrics import METRICS_TABLE
    from ..mil.evaluation import (
        ATTENTION_CHECK_TABLE,
        MIL_METRICS_TABLE,
        attention_check,
        bag_probabilities,
        mil_metrics,
        tile_centres_inside,
    )
    from ..mil.maps import slide_attention, write_attention_geojson, write_attention_map, write_montage
    from ..plots.evaluation import roc_figure
    from ..report.mil_page import mil_page
    from ..store.tiles import TileStore

    settings = MILSettings.from_config(mil, where=f"datasets: {dataset}: mil")
    boot = {"resamples": evaluation["bootstrap"], "seed": evaluation["seed"]}
    predictions = MIL_PREDICTIONS_TABLE.read(predictions_tsv)
    attention = ATTENTION_TABLE.read(attention_tsv)
    table = mil_metrics(
        predictions, bag=settings.bag, positive_class=positive_class, threshold=MIL_THRESHOLD, **boot
    )
    MIL_METRICS_TABLE.write(table, mil_metrics_tsv)
    deployed = table[table["pooling"] == "attention"].drop(
        columns=["pooling", "seed_auc_min", "seed_auc_max", "seeds"]
    )
    METRICS_TABLE.write(deployed.assign(dataset=dataset)[["dataset", *deployed.columns]], metrics_tsv)

    bags = bag_probabilities(predictions[predictions["pooling"] == "attention"], positive_class)
    scored = bags.assign(**{f"p_{positive_class}": bags["score"]})
    roc_figure(
        scored,
        table[(table["pooling"] == "attention") & (table["level"] == settings.bag)],
        positive_class=positive_class,
        threshold=MIL_THRESHOLD,
        title=f"{dataset}: attention MIL, out-of-fold {settings.bag}s (mean of {settings.seeds} seeds)",
        path=roc_png,
        **boot,
    )

    labels = predictions.groupby("bag")["label"].first()
    bag_of_slide = attention.groupby("slide_id")["bag"].first()
    checked, shown = [], {}
    with atomic_path(attention_dir) as folder:
        folder.mkdir()
        for slide_id, slide_dir, store_path in zip(slides, slide_dirs, tile_stores, strict=True):
            map_jpg, montage = str(folder / f"{slide_id}.jpg"), str(folder / f"{slide_id}.tiles.jpg")
            geojson = str(folder / f"{slide_id}.geojson")
            info = read_json(slide_file(slide_dir, "info"))
            store = TileStore(store_path)
            side0 = store.tile_size * store.plan.level0_per_target
            tiles = slide_attention(attention[attention["slide_id"] == slide_id])
            if tiles.empty:  # an excluded slide: in no bag
                log.warning("%s: no attention (the slide is in no bag: excluded?)", slide_id)
                continue
            regions, rings = _outlines_um(
                annotation_files.get(slide_id, ""), slide_id, settings.evidence, info["mpp_x"]
            )
            bag_label = labels.get(bag_of_slide.get(slide_id, ""), "")
            title = f"{slide_id} ({bag_label}): attention MIL, out of fold"
            write_attention_map(
                tiles,
                thumbnail_png=slide_file(slide_dir, "thumbnail"),
                shape0=(info["height"], info["width"]),
                mpp0=info["mpp_x"],
                side_level0=side0,
                outlines=rings,
                title=title,
                path=map_jpg,
            )
            write_attention_geojson(tiles, slide_id=slide_id, side_level0=side0, path=geojson)
            write_montage(
                tiles,
                store=store,
                index=store.index,
                title=f"{slide_id}: highest and lowest attention",
                path=montage,
            )
            shown[slide_id] = (map_jpg, montage)
            if regions and bag_label == positive_class:
                inside = tile_centres_inside(tiles[["x0", "y0"]].to_numpy(), side0, regions)
                checked.append(tiles.assign(slide_id=slide_id, inside=inside))
        if checked:
            joined = pd.concat(checked, ignore_index=True)
            per_slide, summary = attention_check(joined, joined["inside"], **boot)
        else:
            per_slide = pd.DataFrame(columns=["slide_id", "tiles", "inside", "auc"])
            summary = {"slides": 0, "mean_auc": np.nan, "ci_low": np.nan, "ci_high": np.nan, "note": ""}
        summary_row = {
            "slide_id": "mean over slides",
            "tiles": int(per_slide["tiles"].sum()),
            "inside": int(per_slide["inside"].sum()),
            "auc": summary["mean_auc"],
        }
        check_table = pd.concat([per_slide, pd.DataFrame([summary_row])], ignore_index=True)
        check_table["ci_low"] = [np.nan] * len(per_slide) + [summary["ci_low"]]
        check_table["ci_high"] = [np.nan] * len(per_slide) + [summary["ci_high"]]
        check_table["note"] = [""] * len(per_slide) + [summary["note"]]
        ATTENTION_CHECK_TABLE.write(check_table, attention_check_tsv)
        html = mil_page(
            dataset=dataset,
            metrics=table,
            attention_slides=per_slide,
            attention_summary=summary,
            evidence=settings.evidence,
            roc_png=roc_png,
            maps=shown,
            settings={"bag": settings.bag, "folds": settings.folds, "seeds": settings.seeds},
        )
        with atomic_path(page_html) as tmp:
            tmp.write_text(html, encoding="utf-8")
