"""Training on a dataset's entries: a network on their pixels, or a linear probe on their stored features.

Both are called by the training rules (``rules/model.py``), which write what they return.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ModelError, StainError
from ..pixels import PixelSource, pixel_source
from ..settings import ModelSettings, StainSettings
from ..stain import StainTarget, fit_target, read_reference

log = logging.getLogger(__name__)

#: A stain target fitted on the training split pools this many of its tiles (drawn at random, seeded).
STAIN_REFERENCE_TILES = 256


def fit_network(
    dataset: str,
    train_entries: pd.DataFrame,
    val_entries: pd.DataFrame,
    train_source: PixelSource,
    classes: Sequence[str],
    settings: ModelSettings,
    class_weight: dict[int, float] | None,
    init_model: str | None,
) -> tuple[Any, pd.DataFrame, StainTarget | None]:
    """A network trained on the entries' pixels (from ``init_model``'s weights where given).

    Returns
    -------
    tuple
        The Keras model, its history and its stain target (None without stain normalization).
    """
    import keras

    from .build import build_model, start_from
    from .data import pipeline
    from .fit import train_model

    train_data = pipeline(
        train_source,
        batch_size=settings.batch_size,
        labels=train_entries["target"].to_numpy(),
        shuffle_seed=settings.seed,
        augment=settings.augment,
    )
    val_data = None
    if len(val_entries):
        val_source = pixel_source(val_entries, image_size=train_source.size)
        val_data = pipeline(
            val_source, batch_size=settings.batch_size, labels=val_entries["target"].to_numpy()
        )
    target = stain_target(settings.stain, train_source, seed=settings.seed, dataset=dataset)
    keras_model = build_model(settings, tile_size=train_source.size, classes=classes, stain=target)
    if init_model:
        copied = start_from(keras_model, keras.models.load_model(init_model), source=init_model)
        log.info("%s: %d layers start from %s", dataset, copied, init_model)
    history = train_model(keras_model, train_data, val_data, settings=settings, class_weight=class_weight)
    return keras_model, history, target


def fit_probe_model(
    dataset: str,
    train_entries: pd.DataFrame,
    val_entries: pd.DataFrame,
    classes: Sequence[str],
    settings: ModelSettings,
    features: Sequence[str],
) -> tuple[Any, pd.DataFrame]:
    """A linear probe on the entries' stored features (:mod:`slidesnake.model.probe`).

    Returns
    -------
    tuple
        The probe as a Keras model (features in) and its history (one row per C tried).
    """
    from .probe import entry_features, fit_probe, probe_model

    probe = fit_probe(
        entry_features(train_entries, features),
        train_entries["target"].to_numpy(),
        entry_features(val_entries, features) if len(val_entries) else np.zeros((0, 1), np.float32),
        val_entries["target"].to_numpy(),
        classes=classes,
        classifier=settings.classifier,
        balanced=settings.class_weight == "balanced",
        seed=settings.seed,
    )
    log.info("%s: probe on encoder %s, C = %g", dataset, settings.encoder, probe.c)
    return probe_model(probe, name=f"slidesnake_probe_{dataset}"), probe.history


def stain_target(stain: StainSettings, source: PixelSource, *, seed: int, dataset: str) -> StainTarget | None:
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


def install_pretrained(
    dataset: str,
    classes: Sequence[str],
    settings: ModelSettings,
    encoder: Mapping[str, Any],
    threads: int,
) -> tuple[Any, pd.DataFrame]:
    """A classifier from outside (``kind: pretrained``), checked and deployed without training.

    Its file is loaded as config ``encoders: <name>`` describes it (digest checked; a ``.keras`` file
    Keras cannot load names the Keras version that saved it); its output must have one value per class.

    Returns
    -------
    tuple
        The head applied to its outputs (a softmax for ``outputs: logits``, else none) as a Keras model,
        and an empty history.
    """
    from ..features.encoders import EncoderSpec
    from ..features.loading import load_encoder
    from .build import output_head

    spec = EncoderSpec.from_config(encoder["name"], encoder["settings"])
    network = load_encoder(spec, base_dir=Path.cwd(), threads=threads)
    if network.dim != len(classes):
        msg = (
            f"dataset {dataset!r}: encoders: {spec.name}: the classifier gives {network.dim} outputs, but "
            f"labels: classes has {len(classes)} ({list(classes)}): they must be its outputs, in order"
        )
        raise ModelError(msg)
    log.info(
        "%s: pretrained classifier %s (%s), %s outputs", dataset, spec.name, spec.source, settings.outputs
    )
    head = output_head(
        len(classes), softmax=settings.outputs == "logits", name=f"slidesnake_pretrained_{dataset}"
    )
    return head, pd.DataFrame(columns=["epoch", "loss", "val_loss"])
