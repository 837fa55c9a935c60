"""Rule functions of stages 6 and 7: train a dataset's model, predict tiles, slides and images.

A dataset is either a set of slides (tiles in Zarr stores, labels per tile) or a
patch folder (image files, one label each). Training and prediction work on one
table of *entries* for both: one row per tile or image with its ``label``,
``split`` and what is needed to read its pixels.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from PIL import Image

from .io import atomic_path, read_json, read_table, write_json, write_table
from .slide import SlideInfo
from .tiling import read_tile_index, store_attrs

log = logging.getLogger(__name__)


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


def dataset_entries(
    split_tsv: str, classes: list[str], label_tsvs: dict[str, str] | None, stores: dict[str, str] | None
) -> tuple[list[str] | None, pd.DataFrame]:
    """The labelled entries of a dataset: tiles of its slides (and their stores), or its images."""
    split_table = read_table(split_tsv, keep_default_na=False)
    if stores is not None:
        return slide_entries(split_table, label_tsvs, stores, classes)
    return None, split_table[split_table["label"].isin(classes)]


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
    store_paths, entries = dataset_entries(split_tsv, classes, label_tsvs, stores)
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
    model = build_model(model_cfg, size, classes)
    history = train_model(model, train, val, model_cfg, class_weight)
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


def embed_dataset(
    dataset: str,
    split_tsv: str,
    classes: list[str],
    size: int,
    model_path: str,
    tsne_png: str,
    embedding_tsv: str,
    label_tsvs: dict[str, str] | None = None,
    stores: dict[str, str] | None = None,
    max_items: int = 2000,
    seed: int = 0,
    threads: int = 1,
) -> None:
    """Rule ``tsne``: a t-SNE map of the model's features of labelled tiles (or images), by class and split.

    At most ``max_items`` entries are drawn (seeded, spread over splits and classes).
    """
    import keras
    from sklearn.manifold import TSNE

    from .model import predict_probabilities
    from .plots import embedding_figure

    _set_threads(threads)
    store_paths, entries = dataset_entries(split_tsv, classes, label_tsvs, stores)
    if len(entries) > max_items:
        entries = entries.sample(max_items, random_state=seed)
    entries = entries.reset_index(drop=True)
    model = keras.models.load_model(model_path)
    extractor = keras.Model(model.inputs, model.get_layer("features").output)
    features = predict_probabilities(extractor, _input_pipeline(entries, store_paths, size, 64))
    perplexity = float(min(30, max(2, (len(entries) - 1) / 3)))
    points = TSNE(perplexity=perplexity, random_state=seed, init="pca").fit_transform(features)
    columns = [c for c in ("slide_id", "item", "row", "col", "split", "label") if c in entries]
    table = entries[columns].assign(tsne_1=points[:, 0].round(3), tsne_2=points[:, 1].round(3))
    write_table(table, embedding_tsv)
    embedding_figure(table, f"{dataset}: t-SNE of model features", tsne_png)
