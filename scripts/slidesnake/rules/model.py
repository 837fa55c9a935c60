"""Rules of ``workflow/rules/model.smk``: train a dataset's model (or k fold models and their ensemble),
embed its features."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..entries import TILE_COLUMNS, PixelSource, is_tiles, pixel_source, read_entries
from ..errors import ModelError, StainError
from ..io import atomic_path, read_json, read_table, write_json, write_table
from ..settings import ModelSettings, StainSettings
from ..stain import StainTarget, fit_target, read_reference

log = logging.getLogger(__name__)

#: At most this many entries are embedded by t-SNE (drawn at random, seeded).
TSNE_MAX_ENTRIES = 2000
#: Batch size of prediction and embedding.
PREDICT_BATCH = 64
#: A stain target fitted on the training split pools this many of its tiles (drawn at random, seeded).
STAIN_REFERENCE_TILES = 256


def train(
    *,
    dataset: str,
    entries_tsv: str,
    classes: Sequence[str],
    model: Mapping[str, Any],
    image_size: int | None,
    mpp: float | None,
    model_path: str,
    history_tsv: str,
    config_json: str,
    threads: int,
) -> None:
    """Rule ``train``: train the dataset's classifier on its train entries, validate on val.

    ``config.json`` beside the model records the settings used and the geometry the model takes
    (tile side and microns per pixel; ``mpp`` is None for images of unknown resolution): slides it
    predicts are tiled at that geometry.
    """
    entries = _with_targets(read_entries(entries_tsv), classes)
    _fit(
        dataset=dataset,
        entries=entries,
        train_entries=entries[entries["split"] == "train"],
        val_entries=entries[entries["split"] == "val"],
        classes=classes,
        model=model,
        image_size=image_size,
        mpp=mpp,
        model_path=model_path,
        history_tsv=history_tsv,
        config_json=config_json,
        threads=threads,
    )


def train_variant(*, cohort: str, **arguments: Any) -> None:
    """Rule ``train_variant``: a cohort's variant of a dataset's model (the dataset's settings changed by
    the cohort's ``variant``, e.g. its stain normalization), trained as :func:`train` trains.

    Parameters
    ----------
    cohort : str
        The cohort the variant predicts.
    **arguments
        Those of :func:`train`, ``model`` holding the changed settings.
    """
    log.info("variant of %s for cohort %s", arguments["dataset"], cohort)
    train(**arguments)


def train_fold(
    *,
    dataset: str,
    fold: int,
    entries_tsv: str,
    classes: Sequence[str],
    model: Mapping[str, Any],
    image_size: int | None,
    mpp: float | None,
    model_path: str,
    history_tsv: str,
    config_json: str,
    oof_tsv: str,
    threads: int,
) -> None:
    """Rule ``train_fold``: the model of one cross-validation fold and its out-of-fold predictions.

    It trains on the non-test entries of every other fold and is validated (early stopping) on its
    own fold, whose patients it never trains on; ``oof.tsv`` holds its class probabilities of
    those held-out entries. The test split stays untouched.
    """
    entries = _with_targets(read_entries(entries_tsv), classes)
    development = entries[entries["split"] != "test"]
    held_out = development[development["fold"] == fold]
    if held_out.empty:
        msg = f"dataset {dataset!r}: fold {fold} holds no labelled entries (config 'splits: folds')"
        raise ModelError(msg)
    keras_model = _fit(
        dataset=dataset,
        entries=entries,
        train_entries=development[development["fold"] != fold],
        val_entries=held_out,
        classes=classes,
        model=model,
        image_size=image_size,
        mpp=mpp,
        model_path=model_path,
        history_tsv=history_tsv,
        config_json=config_json,
        threads=threads,
        fold=fold,
    )
    from ..model.data import pipeline
    from ..model.fit import predict_probabilities

    data = pipeline(pixel_source(held_out, image_size=image_size), batch_size=PREDICT_BATCH)
    probabilities = predict_probabilities(keras_model, data)
    columns = [c for c in ("item", "patient_id", "split", "fold", "label", *TILE_COLUMNS) if c in held_out]
    table = held_out[columns].reset_index(drop=True)
    for k, name in enumerate(classes):
        table[f"p_{name}"] = probabilities[:, k].round(6)
    log.info(
        "%s fold %d: %d out-of-fold entries of %d item(s)", dataset, fold, len(table), table["item"].nunique()
    )
    write_table(table, oof_tsv)


def _with_targets(entries: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    return entries.assign(target=entries["label"].map({c: i for i, c in enumerate(classes)}))


def _fit(
    *,
    dataset: str,
    entries: pd.DataFrame,
    train_entries: pd.DataFrame,
    val_entries: pd.DataFrame,
    classes: Sequence[str],
    model: Mapping[str, Any],
    image_size: int | None,
    mpp: float | None,
    model_path: str,
    history_tsv: str,
    config_json: str,
    threads: int,
    fold: int | None = None,
) -> Any:
    """Train a classifier on ``train_entries`` (early stopping on ``val_entries``), save it, its history
    and its ``config.json``; return the trained Keras model.
    """
    import tensorflow as tf

    from ..model.build import build_model
    from ..model.data import pipeline
    from ..model.fit import set_determinism, set_threads, train_model

    settings = ModelSettings.from_config(model, where=f"datasets: {dataset}: model")
    set_threads(threads)
    set_determinism(settings.seed)
    if train_entries.empty:
        msg = f"dataset {dataset!r}: nothing labelled to train on" + (
            f" outside fold {fold}" if fold is not None else " in the train split"
        )
        raise ModelError(msg)
    counts = train_entries["target"].value_counts().reindex(range(len(classes)), fill_value=0)
    class_weight = None
    if settings.class_weight == "balanced":
        class_weight = {k: float(len(train_entries) / (len(classes) * max(1, n))) for k, n in counts.items()}
    log.info("%s: %d train %s, %d val", dataset, len(train_entries), counts.to_dict(), len(val_entries))
    train_source = pixel_source(train_entries, image_size=image_size)
    train_data = pipeline(
        train_source,
        batch_size=settings.batch_size,
        labels=train_entries["target"].to_numpy(),
        shuffle_seed=settings.seed,
        augment=settings.augment,
    )
    val_data = None
    if len(val_entries):
        val_source = pixel_source(val_entries, image_size=image_size)
        val_data = pipeline(
            val_source, batch_size=settings.batch_size, labels=val_entries["target"].to_numpy()
        )
    target = _stain_target(settings.stain, train_source, seed=settings.seed, dataset=dataset)
    keras_model = build_model(settings, tile_size=train_source.size, classes=classes, stain=target)
    history = train_model(keras_model, train_data, val_data, settings=settings, class_weight=class_weight)
    with atomic_path(model_path) as tmp:
        keras_model.save(tmp)  # the temporary name keeps the .keras suffix Keras insists on
    write_table(history, history_tsv)
    write_json(
        {
            "dataset": dataset,
            "fold": fold,
            "classes": list(classes),
            "input_pixels": train_source.size,
            "geometry": {"tile_size": train_source.size, "mpp": mpp},
            "model": settings.to_dict(),
            "train_items": len(train_entries),
            "val_items": len(val_entries),
            "slide_splits": _slide_splits(entries),
            "class_weight": class_weight,
            "stain_target": target.to_dict() if target else None,
            "tensorflow": tf.__version__,
        },
        config_json,
    )
    return keras_model


def _stain_target(
    stain: StainSettings, source: PixelSource, *, seed: int, dataset: str
) -> StainTarget | None:
    """The target of the dataset's stain normalization, fitted on its reference or its training tiles."""
    if stain.normalization == "none":
        return None
    if stain.reference:
        tiles = read_reference(stain.reference)
    else:
        count = len(source.columns[0])
        picks = np.sort(
            np.random.default_rng(seed).choice(count, min(count, STAIN_REFERENCE_TILES), replace=False)
        )
        tiles = [source.read(*(column[k] for column in source.columns)) for k in picks]
    try:
        target = fit_target(tiles, stain.normalization)
    except StainError as error:
        msg = f"dataset {dataset!r}: {error}"
        raise ModelError(msg) from error
    log.info(
        "%s: %s target fitted on %d tiles: %s", dataset, stain.normalization, len(tiles), target.to_dict()
    )
    return target


def ensemble(
    *,
    dataset: str,
    fold_models: Sequence[str],
    fold_configs: Sequence[str],
    fold_histories: Sequence[str],
    model_path: str,
    history_tsv: str,
    config_json: str,
    threads: int,
) -> None:
    """Rule ``ensemble``: the deployed model of a cross-validated dataset, the mean of its fold models.

    One Keras model (uint8 tiles in, the fold models' mean class probabilities out, their pooled
    features concatenated as layer ``features``): prediction, cohorts and t-SNE use it as any model.
    Its history is the folds' histories with a ``fold`` column; its ``config.json`` is the first
    fold's with ``fold`` None and the list of ``folds``.
    """
    import keras

    from ..model.build import ensemble_model
    from ..model.fit import set_threads

    set_threads(threads)
    members = [keras.models.load_model(path) for path in fold_models]
    combined = ensemble_model(members, name=f"slidesnake_ensemble_{dataset}")
    with atomic_path(model_path) as tmp:
        combined.save(tmp)
    histories = [read_table(path).assign(fold=k) for k, path in enumerate(fold_histories)]
    write_table(pd.concat(histories, ignore_index=True), history_tsv)
    configs = [read_json(path) for path in fold_configs]
    write_json(
        {
            **configs[0],
            "fold": None,
            "deploy": "ensemble",
            "folds": [
                {"fold": k, "train_items": c["train_items"], "val_items": c["val_items"]}
                for k, c in enumerate(configs)
            ],
            "train_items": None,
            "val_items": None,
        },
        config_json,
    )
    log.info("%s: ensemble of %d fold models", dataset, len(members))


def _slide_splits(entries: pd.DataFrame) -> dict[str, str]:
    """The split of each slide the model was trained, validated or tested on (none for images):
    predict reads a slide's split here, so its jobs do not wait on the dataset's whole split table.
    """
    if not is_tiles(entries):
        return {}
    return entries.groupby("item")["split"].first().astype(str).to_dict()


def tsne(
    *,
    dataset: str,
    entries_tsv: str,
    image_size: int | None,
    model_path: str,
    seed: int,
    tsne_png: str,
    embedding_tsv: str,
    threads: int,
) -> None:
    """Rule ``tsne``: a t-SNE map of the model's features of labelled entries, by class and split.

    At most :data:`TSNE_MAX_ENTRIES` entries are drawn (seeded).
    """
    import keras
    from sklearn.manifold import TSNE

    from ..model.data import pipeline
    from ..model.fit import feature_model, predict_probabilities, set_threads
    from ..plots.evaluation import embedding_figure

    set_threads(threads)
    entries = read_entries(entries_tsv)
    if len(entries) > TSNE_MAX_ENTRIES:
        entries = entries.sample(TSNE_MAX_ENTRIES, random_state=seed)
    entries = entries.reset_index(drop=True)
    extractor = feature_model(keras.models.load_model(model_path))
    data = pipeline(pixel_source(entries, image_size=image_size), batch_size=PREDICT_BATCH)
    features = predict_probabilities(extractor, data)
    perplexity = float(min(30, max(2, (len(entries) - 1) / 3)))
    points = TSNE(perplexity=perplexity, random_state=seed, init="pca").fit_transform(features)
    columns = [c for c in ("item", "row", "col", "split", "label") if c in entries]
    table = entries[columns].assign(tsne_1=points[:, 0].round(3), tsne_2=points[:, 1].round(3))
    write_table(table, embedding_tsv)
    embedding_figure(table, f"{dataset}: t-SNE of model features", tsne_png)
