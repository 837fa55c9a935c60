"""Rule functions of the learning stages: tile labels, splits, training, prediction, evaluation.

A dataset is either a set of slides (tiles in Zarr stores, labels per tile) or a
patch folder (image files, one label each). Training, prediction and
evaluation work on one table of *entries* for both: one row per tile or image
with its ``label``, ``split`` and what is needed to read its pixels.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .io import atomic_path, read_json, read_table, write_json, write_table
from .slide import SlideInfo
from .tiling import read_tile_index, store_attrs

log = logging.getLogger(__name__)


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


def split_slides(
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
    """Rule ``split_slides``: patient-grouped train/val/test splits of a slide dataset, checked for leakage.

    A slide's stratification label is ``positive_class`` when any of its tiles
    has it, else its most common tile label. Slides with the same file checksum
    are identical content and stay on one side.
    """
    from .splits import make_splits

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
    tiles = pd.concat(tile_labels, ignore_index=True).merge(table[["item", "split"]], on="item")
    _write_splits(dataset, table, tiles, out_tsv, leakage_json, balance_tsv)
    return table


def split_patches(
    dataset: str,
    patches: dict,
    classes: list[str],
    splits: dict,
    out_tsv: str,
    leakage_json: str,
    balance_tsv: str,
) -> pd.DataFrame:
    """Rule ``split_patches``: splits of a patch-folder dataset, grouped by patient and identical pixels.

    With ``patches: split_column`` the split given in the labels CSV is kept
    (values train/val/test, any case; ``validation`` counts as val) and only checked.
    """
    from .patches import read_patch_dataset
    from .splits import SplitError, leakage_groups, make_splits

    items = read_patch_dataset(
        dataset,
        patches.get("root"),
        patches.get("labels_csv"),
        patches.get("patient_pattern"),
        classes,
        patches.get("label_pattern"),
    )
    column = patches.get("split_column")
    if column:
        if column not in items:
            raise SplitError(
                f"dataset {dataset!r}: labels CSV has no column {column!r} (config 'split_column')"
            )
        given = items[column].str.lower().replace({"validation": "val", "valid": "val"})
        unknown = sorted(set(given) - {"train", "val", "test"})
        if unknown:
            raise SplitError(
                f"dataset {dataset!r}: column {column!r} has values {unknown}; use train/val/test"
            )
        table = items.assign(group=leakage_groups(items, splits["duplicates"]).to_numpy(), split=given)
        table["fold"] = np.where(table["split"] == "test", -1, 0)
    else:
        table = make_splits(
            items, splits["fractions"], splits["folds"], splits["seed"], dataset, splits["duplicates"]
        )
    _write_splits(dataset, table, table[["item", "split", "label"]], out_tsv, leakage_json, balance_tsv)
    return table


def _write_splits(
    dataset: str, table: pd.DataFrame, units: pd.DataFrame, out_tsv: str, leakage_json: str, balance_tsv: str
) -> None:
    """Check a split table for leakage, then write it, the leakage report and the class balance of ``units``."""
    from .splits import SplitError, class_balance, leakage_report

    report = leakage_report(table)
    report["dataset"] = dataset
    if not report["ok"]:
        raise SplitError(
            f"dataset {dataset!r}: leakage between splits: patients {report['patients_on_several_sides']}, "
            f"identical items {report['duplicates_on_several_sides']}"
        )
    if report["duplicate_items"]:
        log.warning("%s: identical items kept on one side: %s", dataset, report["duplicate_items"])
    write_table(table, out_tsv)
    write_json(report, leakage_json)
    per_split = table.groupby("split").agg(items=("item", "nunique"), patients=("patient_id", "nunique"))
    write_table(class_balance(units).merge(per_split, left_on="split", right_index=True), balance_tsv)
    log.info("%s: patients per split %s", dataset, per_split["patients"].to_dict())


def slide_entries(
    split_table: pd.DataFrame, label_tsvs: dict[str, str], stores: dict[str, str], classes: list[str]
) -> tuple[list[str], pd.DataFrame]:
    """Labelled tiles of every slide of a split table.

    Returns
    -------
    tuple of (list of str, pandas.DataFrame)
        The stores, and one row per tile with ``slide_id``, ``split``, ``label``,
        ``store`` (position in the list), ``y``, ``x``, ``row``, ``col``.
    """
    store_paths, parts = [], []
    for slide_id, split in zip(split_table["item"], split_table["split"], strict=True):
        tiles = read_table(label_tsvs[slide_id], keep_default_na=False)
        tiles = tiles[tiles["label"].isin(classes)].assign(store=len(store_paths), split=split)
        store_paths.append(stores[slide_id])
        parts.append(tiles)
    return store_paths, pd.concat(parts, ignore_index=True)


def _input_pipeline(entries: pd.DataFrame, stores: list[str] | None, size: int, batch: int, **kwargs):
    """The tf.data pipeline of tiles (when ``stores`` are given) or of image files (column ``item``)."""
    from .model import image_dataset, tile_dataset

    if stores is not None:
        return tile_dataset(stores, entries, size, batch, **kwargs)
    return image_dataset(entries["item"].tolist(), size, batch, **kwargs)


def _set_threads(threads: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(max(1, threads))
    tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))


def train_dataset(
    dataset: str,
    split_tsv: str,
    classes: list[str],
    model_cfg: dict,
    size: int,
    model_path: str,
    history_tsv: str,
    config_json: str,
    label_tsvs: dict[str, str] | None = None,
    stores: dict[str, str] | None = None,
    threads: int = 1,
) -> None:
    """Rule ``train``: train the dataset's classifier on its train split, validate on val.

    Slide datasets pass ``label_tsvs`` and ``stores`` (tiles of ``size`` pixels);
    patch datasets pass neither (images resized to ``size`` pixels).
    """
    import tensorflow as tf

    from .model import build_model, set_determinism, train_model

    _set_threads(threads)
    set_determinism(model_cfg["seed"])
    split_table = read_table(split_tsv, keep_default_na=False)
    store_paths = None
    if stores is not None:
        store_paths, entries = slide_entries(split_table, label_tsvs, stores, classes)
    else:
        entries = split_table
    entries = entries.assign(target=entries["label"].map({c: i for i, c in enumerate(classes)}))
    train_entries = entries[entries["split"] == "train"]
    val_entries = entries[entries["split"] == "val"]
    if train_entries.empty:
        raise ValueError(f"dataset {dataset!r}: nothing labelled in the train split")
    counts = train_entries["target"].value_counts().reindex(range(len(classes)), fill_value=0)
    class_weight = None
    if model_cfg.get("class_weight") == "balanced":
        class_weight = {k: float(len(train_entries) / (len(classes) * max(1, n))) for k, n in counts.items()}
    log.info("%s: %d train %s, %d val", dataset, len(train_entries), counts.to_dict(), len(val_entries))
    batch = model_cfg["batch_size"]
    train = _input_pipeline(
        train_entries,
        store_paths,
        size,
        batch,
        labels=train_entries["target"].to_numpy(),
        shuffle_seed=model_cfg["seed"],
        augment=model_cfg.get("augment"),
    )
    val = None
    if len(val_entries):
        val = _input_pipeline(val_entries, store_paths, size, batch, labels=val_entries["target"].to_numpy())
    model = build_model(model_cfg["backbone"], model_cfg["input_size"], size, classes, model_cfg["weights"])
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
            "input_pixels": size,
            "model": model_cfg,
            "train_items": len(train_entries),
            "val_items": len(val_entries),
            "class_weight": class_weight,
            "tensorflow": tf.__version__,
        },
        config_json,
    )


def _probabilities(
    model_path: str,
    entries: pd.DataFrame,
    stores: list[str] | None,
    size: int,
    classes: list[str],
    batch_size: int = 64,
) -> pd.DataFrame:
    """``p_<class>`` columns for every entry, from the saved model."""
    import keras

    from .model import predict_probabilities

    model = keras.models.load_model(model_path)
    probabilities = predict_probabilities(model, _input_pipeline(entries, stores, size, batch_size))
    return pd.DataFrame(
        {f"p_{c}": probabilities[:, k].round(5) for k, c in enumerate(classes)}, index=entries.index
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
    threads: int = 1,
) -> None:
    """Rule ``predict``: tile probabilities, the stitched probability map, its heatmap and slide scores."""
    from .maps import probability_grid, write_probability_map
    from .plots import heatmap_figure

    _set_threads(threads)
    info = SlideInfo.from_dict(read_json(info_json))
    tile_size = store_attrs(store)["tile_size"]
    index = read_tile_index(store)
    tiles = index[["row", "col", "y", "x", "x0", "y0"]].copy()
    tiles = tiles.join(_probabilities(model_path, index.assign(store=0), [store], tile_size, classes))
    write_table(tiles, tiles_tsv)
    column = f"p_{positive_class}"
    grid = probability_grid(tiles, info.target_height // tile_size, info.target_width // tile_size, column)
    write_probability_map(grid, map_store, info, tile_size, positive_class)
    p = tiles[column].to_numpy()
    tile_mm2 = (tile_size * info.tile_mpp / 1000) ** 2
    scores = {
        "slide_id": info.slide_id,
        "tiles": len(tiles),
        "mean_probability": round(float(p.mean()), 5) if len(p) else None,
        "max_probability": round(float(p.max()), 5) if len(p) else None,
        "positive_fraction": round(float((p >= 0.5).mean()), 5) if len(p) else None,
        "positive_area_mm2": round(float((p >= 0.5).sum()) * tile_mm2, 4),
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


def predict_patches(
    model_path: str, split_tsv: str, classes: list[str], size: int, out_tsv: str, threads: int = 1
) -> None:
    """Rule ``predict_patches``: class probabilities of every image of a patch dataset."""
    _set_threads(threads)
    items = read_table(split_tsv, keep_default_na=False)
    table = items[["item", "patient_id", "label", "split"]].join(
        _probabilities(model_path, items, None, size, classes)
    )
    write_table(table, out_tsv)


def evaluate_dataset(
    dataset: str,
    classes: list[str],
    positive_class: str,
    history_tsv: str,
    metrics_tsv: str,
    items_tsv: str,
    confusion_png: str,
    roc_png: str,
    curves_png: str,
    split_tsv: str | None = None,
    label_tsvs: dict[str, str] | None = None,
    tile_tsvs: dict[str, str] | None = None,
    patches_tsv: str | None = None,
) -> pd.DataFrame:
    """Rule ``evaluate``: metrics per split, a per-item table, confusion matrix, ROC and training curves.

    Slide datasets pass ``split_tsv``, ``label_tsvs`` and ``tile_tsvs``: metrics
    are over labelled tiles and ``items_tsv`` has one row per slide. Patch
    datasets pass ``patches_tsv``: metrics are over images and ``items_tsv`` is
    a copy of the predictions.
    """
    from .metrics import split_metrics
    from .plots import confusion_figure, roc_figure, training_curves_figure

    p = f"p_{positive_class}"
    if patches_tsv is not None:
        scored = read_table(patches_tsv, keep_default_na=False)
        items = scored
        unit = "images"
    else:
        split_table = read_table(split_tsv, keep_default_na=False)
        parts = []
        for slide_id, split in zip(split_table["item"], split_table["split"], strict=True):
            labels = read_table(label_tsvs[slide_id], keep_default_na=False)[["row", "col", "label"]]
            predicted = read_table(tile_tsvs[slide_id])
            parts.append(predicted.merge(labels, on=["row", "col"]).assign(slide_id=slide_id, split=split))
        scored = pd.concat(parts, ignore_index=True)
        items = (
            scored.groupby(["slide_id", "split"])
            .agg(
                tiles=(p, "size"),
                true_positive_fraction=("label", lambda s: float((s == positive_class).mean())),
                predicted_positive_fraction=(p, lambda s: float((s >= 0.5).mean())),
                mean_probability=(p, "mean"),
            )
            .round(4)
            .reset_index()
        )
        unit = "tiles"
    labelled = scored[scored["label"].isin(classes)]
    metrics = split_metrics(labelled, classes, positive_class)
    metrics.insert(0, "dataset", dataset)
    metrics.insert(2, "unit", unit)
    write_table(metrics, metrics_tsv)
    write_table(items, items_tsv)
    confusion_figure(labelled[labelled["split"] == "test"], classes, f"{dataset}: test {unit}", confusion_png)
    roc_figure(labelled, classes, positive_class, f"{dataset}: ROC of {positive_class} by split", roc_png)
    training_curves_figure(read_table(history_tsv), f"{dataset}: training", curves_png)
    return metrics
