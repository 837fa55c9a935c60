"""The config's ``mil`` section (with a dataset's ``mil`` override): how a MIL dataset learns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..settings import ConfigSection


def mil_section(config: Mapping[str, Any], dataset: str) -> dict[str, Any]:
    """A dataset's ``mil`` settings: the config's ``mil`` section updated by the dataset's ``mil`` keys."""
    return {**config["mil"], **config["datasets"][dataset].get("mil", {})}


@dataclass(frozen=True, kw_only=True)
class MILSettings(ConfigSection):
    """How a MIL dataset's bags are made and its models trained (defaults in the schema).

    Attributes
    ----------
    bag : {'slide', 'patient'}
        A bag is one slide's tiles, or all tiles of a patient's slides.
    folds : int
        k of the patient-grouped, stratified cross-validation (every patient is out of fold once).
    seeds : int
        Models trained per fold and pooling, with seeds ``seed`` .. ``seed + seeds - 1``.
    hidden, attention : int
        Width of the tile embedding (dense, ReLU) and of the gated attention.
    dropout : float
        After the embedding.
    tiles_per_bag : int
        Tiles sampled from a bag at each training epoch (all at validation and test).
    epochs, patience, min_epochs : int
        At most ``epochs`` epochs; stop after ``patience`` without a lower validation loss, but not before
        ``min_epochs`` (the weights of the best epoch are kept).
    learning_rate, weight_decay : float
        AdamW.
    batch_size : int
        Bags per step.
    val_share : float
        Share of a fold's training patients held out (stratified) for early stopping.
    seed : int
        The first seed.
    evidence : tuple of str
        Annotation classes where the positive class's evidence lies: attention is checked against them.
    """

    bag: Literal["slide", "patient"]
    folds: int
    seeds: int
    hidden: int
    attention: int
    dropout: float
    tiles_per_bag: int
    epochs: int
    patience: int
    min_epochs: int
    learning_rate: float
    weight_decay: float
    batch_size: int
    val_share: float
    seed: int
    evidence: tuple[str, ...]
