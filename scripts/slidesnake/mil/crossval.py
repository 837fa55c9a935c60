"""Cross-validated MIL: for each fold, each pooling and each seed a network trained on the other folds'
bags (a stratified, patient-grouped part of them held out for early stopping) predicts the fold's bags.

Bags of fold -1 (the dataset's test split, when it has one) are predicted by every fold's networks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from ..errors import ModelError
from ..interrupts import interrupts_held
from .bags import Bag, padded
from .network import fit_network, predict_bags
from .settings import MILSettings

log = logging.getLogger(__name__)

POOLINGS = ("attention", "mean")


def _val_part(bags: Sequence[Bag], codes: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Which of `bags` hold out for early stopping: about `share` of their patients, stratified."""
    groups = np.array([b.patient_id for b in bags])
    least = min(np.bincount(codes)[np.unique(codes)])
    if least < 2:
        raise ModelError("a class has fewer than two training bags in a fold: too few patients for MIL")
    # about `share` held out, as whole patients allow: no more parts than the smallest class has bags
    splits = max(2, min(round(1 / share), least, len(set(groups))))
    folds = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
    _, held = next(iter(folds.split(np.zeros(len(bags)), codes, groups)))
    part = np.zeros(len(bags), bool)
    part[held] = True
    return part


def _arrays(bags: Sequence[Bag], codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    features, mask = padded(bags)
    return features, mask, codes


def crossvalidate(
    bags: Sequence[Bag],
    folds: Mapping[str, int],
    *,
    classes: Sequence[str],
    settings: MILSettings,
    models_dir: Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train and predict every fold x pooling x seed.

    Parameters
    ----------
    bags : sequence of Bag
        The dataset's bags.
    folds : Mapping
        Bag name -> its fold (0 .. k-1; -1: a test bag).
    classes : sequence of str
        The classes, in output order.
    settings : MILSettings
        The networks and their training.
    models_dir : Path, optional
        Where to save each network (``fold<k>_<pooling>_seed<s>.keras``).

    Returns
    -------
    tuple of pandas.DataFrame
        Predictions (``bag``, ``patient_id``, ``label``, ``split`` 'oof' or 'test', ``fold``, ``pooling``,
        ``seed``, ``p_<class>``), attention (``bag``, ``slide_id``, ``x0``, ``y0``, ``fold``, ``seed``,
        ``attention``: out-of-fold attention networks only, a row per tile) and training histories.
    """
    codes = np.array([list(classes).index(b.label) for b in bags])
    fold_of = np.array([folds[b.name] for b in bags])
    test = fold_of < 0
    predictions, attention, histories = [], [], []
    for fold in sorted(set(fold_of[~test].tolist())):
        held = np.flatnonzero(fold_of == fold)
        rest = np.flatnonzero((fold_of != fold) & ~test)
        val = _val_part([bags[i] for i in rest], codes[rest], settings.val_share, settings.seed + fold)
        train_idx, val_idx = rest[~val], rest[val]
        train = _arrays([bags[i] for i in train_idx], codes[train_idx])
        check = _arrays([bags[i] for i in val_idx], codes[val_idx])
        for pooling in POOLINGS:
            for seed in range(settings.seed, settings.seed + settings.seeds):
                model, history = fit_network(
                    train, check, classes=len(classes), settings=settings, pooling=pooling, seed=seed
                )
                histories.append(history.assign(fold=fold, pooling=pooling, seed=seed))
                if models_dir is not None:
                    with interrupts_held():  # Keras wraps what its saving raises: a signal waits for it
                        model.save(models_dir / f"fold{fold}_{pooling}_seed{seed}.keras")
                log.info(
                    "fold %d, %s pooling, seed %d: %d epochs, best val loss %.4f (%d train, %d val bags)",
                    fold,
                    pooling,
                    seed,
                    len(history),
                    history["val_loss"].min(),
                    len(train_idx),
                    len(val_idx),
                )
                for split, idx in (("oof", held), ("test", np.flatnonzero(test))):
                    if not len(idx):
                        continue
                    probabilities, weights = predict_bags(model, *padded([bags[i] for i in idx]))
                    for row, i in enumerate(idx):
                        b = bags[i]
                        predictions.append(
                            {"bag": b.name, "patient_id": b.patient_id, "label": b.label, "split": split}
                            | {"fold": fold, "pooling": pooling, "seed": seed}
                            | {f"p_{c}": float(probabilities[row, k]) for k, c in enumerate(classes)}
                        )
                        if pooling == "attention" and split == "oof":
                            attention.append(
                                pd.DataFrame(
                                    {
                                        "bag": b.name,
                                        "slide_id": b.slide_ids,
                                        "x0": b.corners[:, 0],
                                        "y0": b.corners[:, 1],
                                        "fold": fold,
                                        "seed": seed,
                                        "attention": weights[row, : len(b)],
                                    }
                                )
                            )
    return pd.DataFrame(predictions), pd.concat(attention, ignore_index=True), pd.concat(histories)
