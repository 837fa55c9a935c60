"""Rules of ``workflow/rules/model.smk``: train a dataset's model (or k fold models and their ensemble),
embed its features."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..cohorts import Geometry
from ..entries import ENTRIES_TABLE, OOF_TABLE, TILE_COLUMNS, is_tiles
from ..errors import ModelError
from ..io import atomic_path
from ..model.card import ModelCard
from ..model.classifier import PREDICT_BATCH
from ..model.history import HISTORY_TABLE
from ..pixels import pixel_source
from ..settings import ModelSettings

log = logging.getLogger(__name__)

#: At most this many entries are embedded by t-SNE (drawn at random, seeded).
TSNE_MAX_ENTRIES = 2000


def train(
    *,
    dataset: str,
    entries_tsv: str,
    classes: Sequence[str],
    model_settings: Mapping[str, Any],
    image_size: int | None,
    mpp: float | None,
    model_path: str,
    history_tsv: str,
    config_json: str,
    features: Sequence[str],
    encoder: Mapping[str, Any] | None,
    init_model: str | None,
    threads: int,
) -> None:
    """Rule ``train``: train the dataset's classifier on its train entries, validate on val.

    ``config.json`` beside the model records the settings used and the geometry the model takes
    (tile side and microns per pixel; ``mpp`` is None for images of unknown resolution): slides it
    predicts are tiled at that geometry. A probe (``kind: probe``) learns from ``features``, the feature
    stores of the dataset's slides, and its ``config.json`` records its ``encoder`` (name, settings and the
    model file of a ``dataset`` encoder); a network with ``init`` starts from the weights of ``init_model``.
    """
    entries = _with_targets(ENTRIES_TABLE.read(entries_tsv), classes)
    _fit(
        dataset=dataset,
        entries=entries,
        train_entries=entries[entries["split"] == "train"],
        val_entries=entries[entries["split"] == "val"],
        classes=classes,
        model_settings=model_settings,
        image_size=image_size,
        mpp=mpp,
        model_path=model_path,
        history_tsv=history_tsv,
        config_json=config_json,
        features=features,
        encoder=encoder,
        init_model=init_model,
        threads=threads,
    )


def train_variant(*, cohort: str, **arguments: Any) -> None:
    """Rule ``train_variant``: the variant of a dataset's model that predicts ``cohort`` (the dataset's
    settings changed by the cohort's ``variant``, e.g. its stain normalization, in ``model_settings``),
    trained as :func:`train` trains.
    """
    log.info("variant of %s for cohort %s", arguments["dataset"], cohort)
    train(**arguments)


def train_regime(*, regime: str, **arguments: Any) -> None:
    """Rule ``train_regime``: the dataset's model trained another way (``datasets: <name>: regimes``, the
    regime's settings in ``model_settings``), on the same train split, as :func:`train` trains.
    """
    log.info("regime %s of %s", regime, arguments["dataset"])
    train(**arguments)


def regimes(
    *, models: Sequence[Mapping[str, Any]], evaluation: Mapping[str, Any], regimes_tsv: str, threads: int
) -> None:
    """Rule ``regimes``: every dataset's model and regimes on its labelled test tiles, one row each.

    Parameters
    ----------
    models : sequence of Mapping
        Per model: ``dataset``, ``regime``, ``training`` (in words), ``model_path``, ``model_json``,
        ``entries_tsv``, ``classes``, ``positive_class`` and ``image_size``.
    evaluation : Mapping
        Config ``evaluation`` (the patient bootstrap).
    regimes_tsv : str
        ``results/reports/regimes.tsv`` (:data:`slidesnake.regimes.COLUMNS`).
    threads : int
        CPU threads of TensorFlow and of probes' encoders.
    """
    from ..metrics import level_metrics
    from ..model.classifier import probabilities
    from ..model.fit import set_threads
    from ..regimes import REGIMES_TABLE, regimes_table
    from ..settings import EvaluationSettings

    set_threads(threads)
    bootstrap = EvaluationSettings.from_config(evaluation, where="evaluation")
    rows = []
    for row in models:
        entries = ENTRIES_TABLE.read(row["entries_tsv"])
        test = entries[entries["split"] == "test"].reset_index(drop=True)
        card = ModelCard.load(row["model_json"])
        found = {k: row[k] for k in ("dataset", "regime", "training")} | {"train_seconds": card.train_seconds}
        if test.empty:
            rows.append(found | {"n": 0, "note": "no labelled test entries"})
            continue
        classes, positive = row["classes"], row["positive_class"]
        p = probabilities(row["model_path"], card, test, classes, row["image_size"], threads)
        scored = test.join(p).assign(called=np.asarray(classes)[p.to_numpy().argmax(axis=1)])
        metrics = level_metrics(
            scored,
            truth="label",
            score=f"p_{positive}",
            called="called",
            resamples=bootstrap.bootstrap,
            seed=bootstrap.seed,
            positive=positive,
            unit="tile",
        )
        rows.append(found | metrics.iloc[0].to_dict())
        log.info("%s %s: %s", row["dataset"], row["regime"], metrics.iloc[0][["n", "auc"]].to_dict())
    REGIMES_TABLE.write(regimes_table(rows), regimes_tsv)


def train_fold(
    *,
    dataset: str,
    fold: int,
    entries_tsv: str,
    classes: Sequence[str],
    model_settings: Mapping[str, Any],
    image_size: int | None,
    mpp: float | None,
    model_path: str,
    history_tsv: str,
    config_json: str,
    oof_tsv: str,
    features: Sequence[str],
    encoder: Mapping[str, Any] | None,
    init_model: str | None,
    threads: int,
) -> None:
    """Rule ``train_fold``: the model of one cross-validation fold and its out-of-fold predictions.

    It trains on the non-test entries of every other fold and is validated (early stopping) on its
    own fold, whose patients it never trains on; ``oof.tsv`` holds its class probabilities of
    those held-out entries. The test split stays untouched.
    """
    entries = _with_targets(ENTRIES_TABLE.read(entries_tsv), classes)
    development = entries[entries["split"] != "test"]
    held_out = development[development["fold"] == fold]
    if held_out.empty:
        msg = f"dataset {dataset!r}: fold {fold} holds no labelled entries (config 'splits: folds')"
        raise ModelError(msg)
    classifier = _fit(
        dataset=dataset,
        entries=entries,
        train_entries=development[development["fold"] != fold],
        val_entries=held_out,
        classes=classes,
        model_settings=model_settings,
        image_size=image_size,
        mpp=mpp,
        model_path=model_path,
        history_tsv=history_tsv,
        config_json=config_json,
        features=features,
        encoder=encoder,
        init_model=init_model,
        threads=threads,
        fold=fold,
    )
    from ..model.data import pipeline
    from ..model.fit import predict_probabilities

    if features:  # a probe: its held-out entries' stored features
        from ..model.probe import entry_features

        data = [entry_features(held_out, features)]
    else:
        data = pipeline(pixel_source(held_out, image_size=image_size), batch_size=PREDICT_BATCH)
    probabilities = predict_probabilities(classifier, data)
    columns = [c for c in ("item", "patient_id", "split", "fold", "label", *TILE_COLUMNS) if c in held_out]
    table = held_out[columns].reset_index(drop=True)
    for k, name in enumerate(classes):
        table[f"p_{name}"] = probabilities[:, k].round(6)
    log.info(
        "%s fold %d: %d out-of-fold entries of %d item(s)", dataset, fold, len(table), table["item"].nunique()
    )
    OOF_TABLE.write(table, oof_tsv)


def _with_targets(entries: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    return entries.assign(target=entries["label"].map({c: i for i, c in enumerate(classes)}))


def _fit(
    *,
    dataset: str,
    entries: pd.DataFrame,
    train_entries: pd.DataFrame,
    val_entries: pd.DataFrame,
    classes: Sequence[str],
    model_settings: Mapping[str, Any],
    image_size: int | None,
    mpp: float | None,
    model_path: str,
    history_tsv: str,
    config_json: str,
    features: Sequence[str],
    encoder: Mapping[str, Any] | None,
    init_model: str | None,
    threads: int,
    fold: int | None = None,
) -> Any:
    """Train a classifier on ``train_entries`` (early stopping, or a probe's C, on ``val_entries``), save it,
    its history and its ``config.json``; return the trained Keras model.
    """
    import tensorflow as tf

    from ..model.fit import set_determinism, set_threads
    from ..model.training import fit_network, fit_probe_model, install_pretrained

    settings = ModelSettings.from_config(model_settings, where=f"datasets: {dataset}: model")
    set_threads(threads)
    set_determinism(settings.seed)
    if train_entries.empty and settings.kind != "pretrained":
        msg = f"dataset {dataset!r}: nothing labelled to train on" + (
            f" outside fold {fold}" if fold is not None else " in the train split"
        )
        raise ModelError(msg)
    counts = train_entries["target"].value_counts().reindex(range(len(classes)), fill_value=0)
    class_weight = None
    if settings.class_weight == "balanced":
        class_weight = {k: float(len(train_entries) / (len(classes) * max(1, n))) for k, n in counts.items()}
    log.info("%s: %d train %s, %d val", dataset, len(train_entries), counts.to_dict(), len(val_entries))
    started = time.perf_counter()
    train_source = pixel_source(entries if train_entries.empty else train_entries, image_size=image_size)
    if settings.kind == "pretrained":  # deployed as it is: its outputs through a softmax or as they are
        keras_model, history = install_pretrained(dataset, classes, settings, encoder, threads)
        target = None
    elif settings.kind == "probe":
        keras_model, history = fit_probe_model(
            dataset, train_entries, val_entries, classes, settings, features
        )
        target = None
    else:
        keras_model, history, target = fit_network(
            dataset, train_entries, val_entries, train_source, classes, settings, class_weight, init_model
        )
    with atomic_path(model_path) as tmp:
        keras_model.save(tmp)  # the temporary name keeps the .keras suffix Keras insists on
    HISTORY_TABLE.write(history, history_tsv)
    ModelCard(
        dataset=dataset,
        fold=fold,
        classes=tuple(classes),
        input_pixels=train_source.size,
        geometry=None if mpp is None else Geometry(float(mpp), train_source.size),
        settings=settings.to_dict(),
        encoder=dict(encoder) if settings.kind != "cnn" and encoder else None,
        init_model=init_model if settings.kind == "cnn" else None,
        slide_splits=_slide_splits(entries),
        stain_target=target.to_dict() if target else None,
        class_weight=class_weight,
        train_items=len(train_entries),
        val_items=len(val_entries),
        train_seconds=round(time.perf_counter() - started, 1),
        deploy=None,
        folds=(),
        tensorflow=tf.__version__,
    ).write(config_json)
    return keras_model


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
    histories = [HISTORY_TABLE.read(path).assign(fold=k) for k, path in enumerate(fold_histories)]
    HISTORY_TABLE.write(pd.concat(histories, ignore_index=True), history_tsv)
    cards = [ModelCard.load(path) for path in fold_configs]
    dataclasses.replace(
        cards[0],
        fold=None,
        deploy="ensemble",
        folds=tuple(
            {
                "fold": k,
                "train_items": c.train_items,
                "val_items": c.val_items,
                "train_seconds": c.train_seconds,
            }
            for k, c in enumerate(cards)
        ),
        train_items=None,
        val_items=None,
        train_seconds=round(sum(c.train_seconds or 0 for c in cards), 1),
    ).write(config_json)
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
    model_json: str,
    seed: int,
    tsne_png: str,
    embedding_tsv: str,
    threads: int,
) -> None:
    """Rule ``tsne``: a t-SNE map of the model's features of labelled entries, by class and split.

    At most :data:`TSNE_MAX_ENTRIES` entries are drawn (seeded). A probe's features are its encoder's.
    """
    from ..model.classifier import load_classifier
    from ..model.data import pipeline
    from ..model.embedding import TSNE_TABLE, tsne_table
    from ..model.fit import feature_model, predict_probabilities, set_threads
    from ..plots.evaluation import embedding_figure

    set_threads(threads)
    entries = ENTRIES_TABLE.read(entries_tsv)
    if len(entries) > TSNE_MAX_ENTRIES:
        entries = entries.sample(TSNE_MAX_ENTRIES, random_state=seed)
    entries = entries.reset_index(drop=True)
    classifier = load_classifier(model_path, ModelCard.load(model_json), threads=threads)
    extractor = feature_model(classifier.model)
    data = pipeline(pixel_source(entries, image_size=image_size), batch_size=PREDICT_BATCH)
    features = predict_probabilities(extractor, (classifier.inputs(batch.numpy()) for batch in data))
    table = tsne_table(entries, features, seed=seed)
    TSNE_TABLE.write(table, embedding_tsv)
    embedding_figure(table, f"{dataset}: t-SNE of model features", tsne_png)
