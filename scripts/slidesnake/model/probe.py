"""The linear probe: a linear classifier on an encoder's stored tile features ("ConvNet as a fixed feature
extractor"), fitted with scikit-learn and saved as a one-layer Keras head.

A probe is fitted on the train entries' features (class weights balanced); its regularisation ``C`` is
chosen from :data:`C_GRID` by the validation split's log loss (``C = 1`` without validation entries). A
linear SVM's scores become probabilities by a logistic fit on them (Platt scaling) on the validation
split, or on the train split where there is none. Either way the probe is one affine map of the
standardised features and a softmax, so it is saved as a Keras model ``features`` (identity) ->
``probabilities`` (dense, softmax) holding the folded weights: predict, ensembles and t-SNE use it as
any slidesnake model, fed with the encoder's features instead of tiles.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..entries import is_tiles
from ..errors import ModelError
from ..features.images import ImageFeatureStore
from ..features.store import FeatureStore

log = logging.getLogger(__name__)

#: Regularisation strengths tried (inverse; scikit-learn's ``C``), on standardised features.
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)
#: Where a class has no training entries, its logit is this far below the others' (probability ~ 0).
ABSENT_CLASS_LOGIT = -30.0


@dataclass(frozen=True, kw_only=True)
class LinearProbe:
    """A fitted probe: ``softmax(features @ weights + bias)`` gives the class probabilities.

    Attributes
    ----------
    weights : numpy.ndarray
        (feature, class) float32.
    bias : numpy.ndarray
        (class,) float32.
    c : float
        The regularisation chosen.
    history : pandas.DataFrame
        One row per ``C`` tried: ``c``, ``loss`` (train), ``val_loss``, ``val_accuracy``, ``chosen``.
    """

    weights: np.ndarray
    bias: np.ndarray
    c: float
    history: pd.DataFrame

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities of (entry, feature) values."""
        logits = features.astype(np.float64) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def entry_features(entries: pd.DataFrame, stores: Sequence[str]) -> np.ndarray:
    """The stored features of each entry, in the entries' order.

    Parameters
    ----------
    entries : pandas.DataFrame
        Tile entries (``item`` = slide id, ``row``, ``col``), or a patch dataset's image entries.
    stores : sequence of str
        Feature stores (``results/features/<encoder>/<slide>.zarr``) covering the entries' slides, or
        the one image feature store of the patch dataset (``results/features/<encoder>/<dataset>.zarr``).

    Returns
    -------
    numpy.ndarray
        (entry, feature) float32.

    Raises
    ------
    ModelError
        A slide without a store, or a tile its store does not hold (features older than the tiles).
    """
    if not is_tiles(entries):  # a patch dataset's images: its one image feature store
        images = ImageFeatureStore(stores[0])
        position = {item: k for k, item in enumerate(images.items)}
        missing = [item for item in entries["item"].astype(str) if item not in position]
        if missing:
            msg = f"{images.path}: image {missing[0]} has no features (rerun its features_patches job)"
            raise ModelError(msg)
        return images.features[[position[item] for item in entries["item"].astype(str)]]
    by_slide = {}
    for path in stores:
        store = FeatureStore(path)
        by_slide[store.slide_id] = store
    out: np.ndarray | None = None
    for slide, part in entries.groupby("item", sort=False):
        store = by_slide.get(str(slide))
        if store is None:
            raise ModelError(f"slide {slide}: no feature store among the probe's inputs")
        index = store.index[["row", "col"]].reset_index(names="position")
        found = part[["row", "col"]].astype("int64").merge(index, on=["row", "col"], how="left")
        if found["position"].isna().any():
            first = part.iloc[int(np.flatnonzero(found["position"].isna().to_numpy())[0])]
            msg = (
                f"slide {slide}: {store.path}: tile row {first['row']}, col {first['col']} has no features "
                "(the store is older than the tiles? rerun its features job)"
            )
            raise ModelError(msg)
        if out is None:
            out = np.empty((len(entries), store.dim), np.float32)
        rows = entries.index.get_indexer(part.index)
        out[rows] = store.features[found["position"].to_numpy(int)]
    return out if out is not None else np.zeros((0, 0), np.float32)


def fit_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    *,
    classes: Sequence[str],
    classifier: Literal["logistic", "svm"],
    balanced: bool,
    seed: int,
) -> LinearProbe:
    """Fit a linear probe, choosing ``C`` on the validation entries.

    Parameters
    ----------
    train_x, val_x : numpy.ndarray
        (entry, feature) features.
    train_y, val_y : numpy.ndarray
        Class indices into ``classes``.
    classes : sequence of str
        Class names, in output order.
    classifier : {'logistic', 'svm'}
        Logistic regression, or a linear SVM with Platt scaling.
    balanced : bool
        Weight classes inversely to their training counts.
    seed : int
        Seed of the solvers.

    Returns
    -------
    LinearProbe
        The probe of the chosen ``C``, refitted on nothing else (train entries only).
    """
    from sklearn.metrics import log_loss

    present = np.unique(train_y)
    if len(present) < 2:
        held = [classes[k] for k in present]
        msg = f"a probe needs two classes to train on; the train entries hold only {held}"
        raise ModelError(msg)
    train_x, val_x = train_x.astype(np.float64), val_x.astype(np.float64)
    mean = train_x.mean(axis=0)
    scale = train_x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    standard_train = (train_x - mean) / scale
    standard_val = (val_x - mean) / scale
    grid = C_GRID if len(val_y) else (1.0,)
    rows, fitted = [], []
    for c in grid:
        weights, bias = _fit_one(
            standard_train,
            train_y,
            standard_val,
            val_y,
            c=c,
            classifier=classifier,
            balanced=balanced,
            seed=seed,
        )
        full_w, full_b = _all_classes(weights, bias, present, len(classes))
        probe = LinearProbe(weights=full_w, bias=full_b, c=c, history=pd.DataFrame())
        row: dict[str, Any] = {
            "c": c,
            "loss": log_loss(train_y, probe.probabilities(standard_train), labels=range(len(classes))),
        }
        if len(val_y):
            p_val = probe.probabilities(standard_val)
            row |= {
                "val_loss": log_loss(val_y, p_val, labels=range(len(classes))),
                "val_accuracy": float((p_val.argmax(axis=1) == val_y).mean()),
            }
        rows.append(row)
        fitted.append(probe)
    history = pd.DataFrame(rows)
    best = int(history["val_loss"].idxmin()) if "val_loss" in history else 0
    history["chosen"] = history.index == best
    chosen = fitted[best]
    # fold the standardisation into the affine map: (x - mean) / scale @ W + b
    weights = (chosen.weights / scale[:, None]).astype(np.float32)
    bias = (chosen.bias - (mean / scale) @ chosen.weights).astype(np.float32)
    log.info("probe (%s): C = %g chosen of %s", classifier, chosen.c, list(grid))
    return LinearProbe(weights=weights, bias=bias, c=chosen.c, history=history.round(6))


def _fit_one(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    *,
    c: float,
    classifier: str,
    balanced: bool,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (feature, present class) and bias of one fit, as logits of the classes present in training."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    weight = "balanced" if balanced else None
    if classifier == "logistic":
        model = LogisticRegression(C=c, class_weight=weight, max_iter=2000, random_state=seed)
        model.fit(train_x, train_y)
        return _logits(model.coef_, model.intercept_)
    svm = LinearSVC(C=c, class_weight=weight, max_iter=5000, random_state=seed)
    svm.fit(train_x, train_y)
    w, b = _logits(svm.coef_, svm.intercept_)  # decision values, as logits of each class
    # Platt on the validation entries where they hold every trained class, else on the train entries
    whole = set(np.unique(val_y)) >= set(svm.classes_)
    calibrate_x, calibrate_y = (val_x, val_y) if whole else (train_x, train_y)
    keep = np.isin(calibrate_y, svm.classes_)
    calibrate_x, calibrate_y = calibrate_x[keep], calibrate_y[keep]
    scores = calibrate_x @ w + b
    platt = LogisticRegression(C=1e4, max_iter=2000, random_state=seed)
    platt.fit(scores, np.searchsorted(svm.classes_, calibrate_y))
    a, c0 = _logits(platt.coef_, platt.intercept_)  # logits = scores @ a + c0
    return w @ a, b @ a + c0


def _logits(coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's linear coefficients as (input, class) logit weights (two classes: [0, w . x + b])."""
    if coef.shape[0] == 1:
        return np.hstack([np.zeros((coef.shape[1], 1)), coef.T]), np.array([0.0, intercept[0]])
    return coef.T, np.asarray(intercept, float)


def _all_classes(
    weights: np.ndarray, bias: np.ndarray, present: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Logit weights for every class; a class absent from training gets :data:`ABSENT_CLASS_LOGIT`."""
    full_w = np.zeros((weights.shape[0], count))
    full_b = np.full(count, ABSENT_CLASS_LOGIT + float(bias.min()))
    full_w[:, present] = weights
    full_b[present] = bias
    return full_w, full_b


def probe_model(probe: LinearProbe, *, name: str) -> Any:
    """The probe as a Keras model: features in, layer ``features`` (identity), softmax ``probabilities``."""
    import keras

    from .build import FEATURES, PROBABILITIES

    dim, count = probe.weights.shape
    inputs = keras.Input((dim,), name="encoder_features")
    x = keras.layers.Identity(name=FEATURES)(inputs)
    dense = keras.layers.Dense(count, activation="softmax", name=PROBABILITIES)
    outputs = dense(x)
    dense.set_weights([probe.weights, probe.bias])
    return keras.Model(inputs, outputs, name=name)
