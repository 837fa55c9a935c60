"""Bags of tile features: one per slide or per patient, read from feature stores, padded with a mask.

Keras 3 has no ragged inputs, so a batch of bags is one (bag, tile, feature) array padded to its
longest bag, with a (bag, tile) mask that is 1 for real tiles and 0 for padding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ModelError
from ..features.store import FeatureStore


@dataclass(frozen=True, kw_only=True)
class Bag:
    """One bag: its tiles' features and where each tile comes from.

    Attributes
    ----------
    name : str
        The slide id (slide bags) or the patient id (patient bags).
    patient_id : str
        The patient.
    label : str
        The bag's class.
    features : numpy.ndarray
        (tile, feature) float32.
    slide_ids : numpy.ndarray
        (tile,) the slide of each tile.
    corners : numpy.ndarray
        (tile, 2) int64: each tile's top-left ``x0, y0`` in level-0 pixels of its slide.
    """

    name: str
    patient_id: str
    label: str
    features: np.ndarray
    slide_ids: np.ndarray
    corners: np.ndarray

    def __len__(self) -> int:
        return len(self.features)


def read_bags(
    slides: pd.DataFrame, feature_stores: Mapping[str, str], *, bag: str, dataset: str
) -> list[Bag]:
    """The bags of a dataset's slides, in the order of `slides`' first appearance of each bag.

    Parameters
    ----------
    slides : pandas.DataFrame
        One row per slide: ``item`` (slide id), ``patient_id``, ``label``.
    feature_stores : Mapping
        Slide id -> its feature store.
    bag : {'slide', 'patient'}
        A bag per slide, or per patient (its slides' tiles together; its slides must agree on the label).
    dataset : str
        For messages.

    Raises
    ------
    ModelError
        A patient whose slides carry different labels (patient bags), or a slide without features.
    """
    stores = {}
    for slide_id in slides["item"]:
        store = FeatureStore(feature_stores[slide_id])
        if not len(store):
            raise ModelError(f"dataset {dataset!r}: slide {slide_id!r} has no tile features ({store.path})")
        stores[slide_id] = store
    key = "item" if bag == "slide" else "patient_id"
    bags = []
    for name, rows in slides.groupby(key, sort=False):
        labels = sorted(set(rows["label"]))
        if len(labels) > 1:
            raise ModelError(
                f"dataset {dataset!r}: patient {name!r} has slides labelled {labels}; a patient bag needs one"
            )
        parts = [stores[s] for s in rows["item"]]
        bags.append(
            Bag(
                name=str(name),
                patient_id=str(rows["patient_id"].iloc[0]),
                label=labels[0],
                features=np.concatenate([p.features for p in parts]).astype(np.float32),
                slide_ids=np.concatenate([np.full(len(p), p.slide_id, dtype=object) for p in parts]),
                corners=np.concatenate([p.coords_level0 for p in parts]),
            )
        )
    return bags


def padded(bags: Sequence[Bag], length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The bags as one (bag, tile, feature) float32 array padded with zeros to `length`, and the mask.

    Parameters
    ----------
    bags : sequence of Bag
        Non-empty bags of the same feature width.
    length : int, optional
        Tiles per padded bag (default: the longest bag's); at least the longest bag.

    Returns
    -------
    tuple of numpy.ndarray
        Features (bag, tile, feature) and mask (bag, tile), float32 (1 for real tiles).
    """
    longest = max(len(b) for b in bags)
    length = longest if length is None else length
    if length < longest:
        raise ValueError(f"length {length} is shorter than the longest bag ({longest} tiles)")
    dim = bags[0].features.shape[1]
    features = np.zeros((len(bags), length, dim), np.float32)
    mask = np.zeros((len(bags), length), np.float32)
    for i, b in enumerate(bags):
        features[i, : len(b)] = b.features
        mask[i, : len(b)] = 1.0
    return features, mask


def sampled_batch(
    features: np.ndarray, mask: np.ndarray, rows: np.ndarray, tiles_per_bag: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A training batch: the padded bags `rows`, each cut to at most `tiles_per_bag` of its real tiles
    (drawn without replacement) and padded to the longest of them.

    Parameters
    ----------
    features, mask : numpy.ndarray
        Padded bags (bag, tile, feature) and their mask (bag, tile).
    rows : numpy.ndarray
        The bags of the batch.
    tiles_per_bag : int
        Most tiles kept of a bag.
    rng : numpy.random.Generator
        Draws the tiles.

    Returns
    -------
    tuple of numpy.ndarray
        Features (bag, tile, feature) and mask (bag, tile) of the batch.
    """
    kept = []
    for row in rows:
        real = np.flatnonzero(mask[row])
        if len(real) > tiles_per_bag:
            real = np.sort(rng.choice(real, tiles_per_bag, replace=False))
        kept.append(real)
    length = max(len(k) for k in kept)
    batch = np.zeros((len(rows), length, features.shape[-1]), np.float32)
    batch_mask = np.zeros((len(rows), length), np.float32)
    for i, (row, tiles) in enumerate(zip(rows, kept, strict=True)):
        batch[i, : len(tiles)] = features[row, tiles]
        batch_mask[i, : len(tiles)] = 1.0
    return batch, batch_mask
