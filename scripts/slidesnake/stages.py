"""One function per workflow rule: read the rule's inputs, call the library, write its outputs.

Every function takes plain paths and config values, so it runs the same from a
Snakemake script, a test or a notebook. Outputs are written atomically.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .io import atomic_path, read_json, read_table, write_json, write_table
from .slide import SlideInfo, SlideReader, read_slide_info
from .tiling import read_tile_index, store_attrs, write_tile_store
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
        "%s: %s, %d levels, %.4f um/px (%s); reading level %d at scale %.3f",
        slide_id,
        info.vendor,
        len(info.level_dimensions),
        info.mpp_x,
        info.mpp_source,
        info.level,
        info.scale,
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
    reader = SlideReader(info)
    overview = reader.read_overview(mpp)
    reader.close()
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
    for image, path in ((overview, thumbnail_png), (mask.astype(np.uint8) * 255, mask_png)):
        with atomic_path(path) as tmp:
            Image.fromarray(image).save(tmp, format="PNG")
    write_table(grid, grid_tsv)
    write_json(qc, qc_json)


def tile_slide(
    info_json: str, grid_tsv: str, tiling: dict, store: str, qc_json: str, threads: int = 1
) -> None:
    """Rule ``tile``: decode the kept tiles into the slide's Zarr store."""
    info = SlideInfo.from_dict(read_json(info_json))
    grid = read_table(grid_tsv)
    kept = grid[grid["keep"]]
    index = write_tile_store(info, kept, tiling["tile_size"], store, tiling["compressor"], threads)
    write_json(
        {
            "slide_id": info.slide_id,
            "tiles_written": len(index),
            "blur_score": None if index.empty else round(float(index["sharpness"].median()), 3),
        },
        qc_json,
    )


def label_slide(
    store: str, info_json: str, labels: dict, annotations: str | None, slide_label: str | None, out_tsv: str
) -> None:
    """Rule ``label_tiles``: a label per tile from annotations or from the slide's label."""
    from .annotations import label_tiles, read_annotations

    info = SlideInfo.from_dict(read_json(info_json))
    index = read_tile_index(store)
    classes = labels["classes"]
    if labels["source"] == "annotations":
        regions = read_annotations(annotations, info.slide_id) if annotations else []
        tile_size_level0 = store_attrs(store)["tile_size"] * info.level0_per_target
        table = label_tiles(
            index,
            tile_size_level0,
            regions,
            labels["annotation_classes"],
            labels.get("unannotated"),
            labels["min_fraction"],
            info.slide_id,
            annotations,
        )
    else:
        if slide_label not in classes:
            raise ValueError(
                f"slide {info.slide_id!r}: sheet column 'label' = {slide_label!r} is not one of "
                f"the dataset's classes {classes}"
            )
        table = index.assign(label=slide_label)
    table.insert(0, "slide_id", info.slide_id)
    counts = table["label"].replace("", "(excluded)").value_counts().to_dict()
    log.info("%s: tile labels %s", info.slide_id, counts)
    write_table(table, out_tsv)


def split_dataset(
    dataset: str,
    patients: dict[str, str],
    label_tsvs: list[str],
    info_jsons: list[str],
    splits: dict,
    positive_class: str,
    out_tsv: str,
    leakage_json: str,
    balance_tsv: str,
) -> pd.DataFrame:
    """Rule ``split``: patient-grouped train/val/test splits of a slide dataset, with the leakage check.

    A slide's stratification label is ``positive_class`` when any of its tiles
    has it, else its most common tile label. Slides with the same file checksum
    are identical content and stay on one side.
    """
    from .splits import SplitError, class_balance, leakage_report, make_splits

    rows, tile_labels = [], []
    for path in label_tsvs:
        tiles = read_table(path, keep_default_na=False)
        slide_id = str(tiles["slide_id"].iloc[0]) if len(tiles) else Path(path).name.split(".")[0]
        labelled = tiles[tiles["label"] != ""]
        if (labelled["label"] == positive_class).any():
            label = positive_class
        elif len(labelled):
            label = labelled["label"].mode().iloc[0]
        else:
            label = "(no tiles)"
        rows.append({"item": slide_id, "label": label, "tiles": len(labelled)})
        tile_labels.append(pd.DataFrame({"item": slide_id, "label": labelled["label"].to_numpy()}))
    items = pd.DataFrame(rows)
    items["patient_id"] = items["item"].map(patients)
    checksums = {info["slide_id"]: info["sha256"] for info in map(read_json, info_jsons)}
    items["content_hash"] = items["item"].map(checksums)
    table = make_splits(
        items, splits["fractions"], splits["folds"], splits["seed"], dataset, splits["duplicates"]
    )
    report = leakage_report(table)
    report["dataset"] = dataset
    if not report["ok"]:
        raise SplitError(f"dataset {dataset!r}: leakage between splits: {report}")
    write_table(table, out_tsv)
    write_json(report, leakage_json)
    tiles = pd.concat(tile_labels, ignore_index=True).merge(table[["item", "split"]], on="item")
    balance = class_balance(tiles)
    per_split = table.groupby("split").agg(slides=("item", "nunique"), patients=("patient_id", "nunique"))
    write_table(balance.merge(per_split, left_on="split", right_index=True), balance_tsv)
    log.info("%s: %s", dataset, table.groupby("split")["patient_id"].nunique().to_dict())
    return table


def _tiles_of(
    split_table: pd.DataFrame,
    label_tsvs: dict[str, str],
    stores: dict[str, str],
    classes: list[str],
    splits: tuple[str, ...],
) -> tuple[list[str], pd.DataFrame]:
    """Labelled tiles of the slides in ``splits``, with a ``store`` number and integer ``target``."""
    chosen = split_table[split_table["split"].isin(splits)]
    store_paths, parts = [], []
    for slide_id in chosen["item"]:
        tiles = read_table(label_tsvs[slide_id], keep_default_na=False)
        tiles = tiles[tiles["label"].isin(classes)]
        tiles = tiles.assign(store=len(store_paths), split=chosen.set_index("item").at[slide_id, "split"])
        store_paths.append(stores[slide_id])
        parts.append(tiles)
    entries = (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["store", "y", "x", "label"])
    )
    entries["target"] = entries["label"].map({c: i for i, c in enumerate(classes)}).astype(int)
    return store_paths, entries


def train_dataset(
    dataset: str,
    split_tsv: str,
    label_tsvs: dict[str, str],
    stores: dict[str, str],
    classes: list[str],
    model_cfg: dict,
    tile_size: int,
    model_path: str,
    history_tsv: str,
    config_json: str,
    threads: int = 1,
) -> None:
    """Rule ``train``: train the dataset's tile classifier on its train split, validate on val."""
    import tensorflow as tf

    from .model import build_model, set_determinism, tile_dataset, train_model

    tf.config.threading.set_inter_op_parallelism_threads(max(1, threads))
    tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
    set_determinism(model_cfg["seed"])
    split_table = read_table(split_tsv, keep_default_na=False)
    store_paths, entries = _tiles_of(split_table, label_tsvs, stores, classes, ("train", "val"))
    train_entries = entries[entries["split"] == "train"]
    val_entries = entries[entries["split"] == "val"]
    if train_entries.empty:
        raise ValueError(f"dataset {dataset!r}: no labelled tiles in the train split")
    counts = train_entries["target"].value_counts().reindex(range(len(classes)), fill_value=0)
    class_weight = None
    if model_cfg.get("class_weight") == "balanced":
        class_weight = {k: float(len(train_entries) / (len(classes) * max(1, n))) for k, n in counts.items()}
    log.info(
        "%s: %d train tiles %s, %d val tiles", dataset, len(train_entries), counts.to_dict(), len(val_entries)
    )
    batch = model_cfg["batch_size"]
    train = tile_dataset(
        store_paths,
        train_entries,
        tile_size,
        batch,
        train_entries["target"].to_numpy(),
        shuffle_seed=model_cfg["seed"],
        augment=model_cfg.get("augment"),
    )
    val = None
    if len(val_entries):
        val = tile_dataset(store_paths, val_entries, tile_size, batch, val_entries["target"].to_numpy())
    model = build_model(
        model_cfg["backbone"], model_cfg["input_size"], tile_size, classes, model_cfg["weights"]
    )
    history = train_model(
        model,
        train,
        val,
        model_cfg["epochs"],
        model_cfg["learning_rate"],
        class_weight,
        model_cfg.get("patience", 5),
    )
    with atomic_path(model_path) as tmp:
        model.save(tmp.with_suffix(".keras"))
        tmp.with_suffix(".keras").rename(tmp)
    write_table(history, history_tsv)
    write_json(
        {
            "dataset": dataset,
            "classes": classes,
            "tile_size": tile_size,
            "model": model_cfg,
            "train_tiles": len(train_entries),
            "val_tiles": len(val_entries),
            "class_weight": class_weight,
            "tensorflow": tf.__version__,
        },
        config_json,
    )


def predict_slide(
    model_path: str,
    store: str,
    info_json: str,
    thumbnail_png: str,
    classes: list[str],
    positive_class: str,
    tiles_tsv: str,
    map_store: str,
    heatmap_png: str,
    scores_json: str,
    batch_size: int = 64,
    threads: int = 1,
) -> None:
    """Rule ``predict``: tile probabilities, the stitched probability map, its heatmap and slide scores."""
    import keras
    import tensorflow as tf

    from .maps import probability_grid, write_probability_map
    from .model import predict_probabilities, tile_dataset
    from .plots import heatmap_figure

    tf.config.threading.set_inter_op_parallelism_threads(max(1, threads))
    tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
    info = SlideInfo.from_dict(read_json(info_json))
    attrs = store_attrs(store)
    tile_size = attrs["tile_size"]
    index = read_tile_index(store)
    model = keras.models.load_model(model_path)
    entries = index.assign(store=0)
    probabilities = predict_probabilities(model, tile_dataset([store], entries, tile_size, batch_size))
    positive = classes.index(positive_class)
    tiles = index[["row", "col", "y", "x", "x0", "y0"]].copy()
    for k, name in enumerate(classes):
        tiles[f"p_{name}"] = probabilities[:, k].round(5)
    write_table(tiles, tiles_tsv)
    grid = probability_grid(
        tiles, info.target_height // tile_size, info.target_width // tile_size, f"p_{positive_class}"
    )
    write_probability_map(grid, map_store, info, tile_size, positive_class)
    p = probabilities[:, positive] if len(tiles) else np.zeros(0)
    scores = {
        "slide_id": info.slide_id,
        "tiles": len(tiles),
        "mean_probability": round(float(p.mean()), 5) if len(p) else None,
        "max_probability": round(float(p.max()), 5) if len(p) else None,
        "positive_fraction": round(float((p >= 0.5).mean()), 5) if len(p) else None,
        "positive_area_mm2": round(float((p >= 0.5).sum()) * (tile_size * info.tile_mpp / 1000) ** 2, 4),
    }
    write_json(scores, scores_json)
    heatmap_figure(
        np.asarray(Image.open(thumbnail_png)),
        grid,
        tile_size * info.tile_mpp,
        info.target_width * info.tile_mpp,
        info.target_height * info.tile_mpp,
        f"{info.slide_id}: P({positive_class})",
        heatmap_png,
    )


def evaluate_dataset(
    dataset: str,
    split_tsv: str,
    label_tsvs: dict[str, str],
    tile_tsvs: dict[str, str],
    history_tsv: str,
    classes: list[str],
    positive_class: str,
    metrics_tsv: str,
    slides_tsv: str,
    confusion_png: str,
    roc_png: str,
    curves_png: str,
) -> pd.DataFrame:
    """Rule ``evaluate``: tile-level metrics per split, slide table, confusion matrix, ROC, curves."""
    from .metrics import split_metrics
    from .plots import confusion_figure, roc_figure, training_curves_figure

    split_table = read_table(split_tsv, keep_default_na=False)
    parts = []
    for slide_id, split in zip(split_table["item"], split_table["split"], strict=True):
        labels = read_table(label_tsvs[slide_id], keep_default_na=False)[["row", "col", "label"]]
        predicted = read_table(tile_tsvs[slide_id])
        joined = predicted.merge(labels, on=["row", "col"])
        parts.append(joined.assign(slide_id=slide_id, split=split))
    tiles = pd.concat(parts, ignore_index=True)
    labelled = tiles[tiles["label"].isin(classes)]
    metrics = split_metrics(labelled, classes, positive_class)
    metrics.insert(0, "dataset", dataset)
    write_table(metrics, metrics_tsv)
    p = f"p_{positive_class}"
    slides = (
        tiles.groupby(["slide_id", "split"])
        .agg(
            tiles=(p, "size"),
            true_positive_fraction=("label", lambda s: float((s == positive_class).mean())),
            predicted_positive_fraction=(p, lambda s: float((s >= 0.5).mean())),
            mean_probability=(p, "mean"),
        )
        .round(4)
        .reset_index()
    )
    write_table(slides, slides_tsv)
    test = labelled[labelled["split"] == "test"]
    confusion_figure(test, classes, f"{dataset}: test tiles", confusion_png)
    roc_figure(labelled, classes, positive_class, f"{dataset}: ROC by split", roc_png)
    training_curves_figure(read_table(history_tsv), f"{dataset}: training", curves_png)
    return metrics


def audit_table(info_jsons: list[str], tissue_jsons: list[str], tile_jsons: list[str], out_tsv: str) -> None:
    """Rule ``audit``: one row per slide with metadata, the resolution decision and QC numbers."""
    rows = []
    for info_path, tissue_path, tile_path in zip(info_jsons, tissue_jsons, tile_jsons, strict=True):
        info = read_json(info_path)
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
                "target_width",
                "target_height",
                "sha256",
            )
        }
        row["levels"] = len(info["level_dimensions"])
        row["associated_images"] = ",".join(info["associated_images"])
        row.update({k: v for k, v in read_json(tissue_path).items() if k != "slide_id"})
        row.update({k: v for k, v in read_json(tile_path).items() if k != "slide_id"})
        rows.append(row)
    write_table(pd.DataFrame(rows), out_tsv)
