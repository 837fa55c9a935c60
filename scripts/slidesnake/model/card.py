"""The model card: what a saved model is and takes, written beside it as ``config.json`` by every training
rule and read by every rule that uses the model (predict, t-SNE, ensembles, the regimes table).

One frozen object instead of string keys at each reader: its dataset and fold, its kind (a network, a
probe with its encoder, a pretrained classifier), its classes in output order, the tile geometry it
takes (:class:`slidesnake.cohorts.Geometry`, the class the parse-time checks use; None for images of
unknown resolution), its settings, its stain target, the split of every slide it saw, and how it was
trained. The JSON layout is the one earlier versions wrote, so cards of existing studies load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from ..cohorts import Geometry
from ..io import read_json, write_json


@dataclass(frozen=True, kw_only=True)
class ModelCard:
    """A saved model's card (``results/models/<dataset>/.../config.json``).

    Attributes
    ----------
    dataset : str
        The dataset it was trained for.
    fold : int or None
        Its cross-validation fold (None: trained on the train split, or an ensemble).
    classes : tuple of str
        Its outputs, in order.
    input_pixels : int
        Side of the tiles (or images) it takes.
    geometry : Geometry or None
        Tile side and microns per pixel of what it takes; None for images of unknown resolution.
    settings : Mapping
        Its model settings (:class:`slidesnake.settings.ModelSettings` as a dict).
    encoder : Mapping or None
        A probe's encoder or a pretrained classifier's file: ``name``, ``settings`` (its config entry,
        digests included) and ``model_file`` (a ``dataset`` encoder's model).
    init_model : str or None
        The model a network started from.
    slide_splits : Mapping
        Slide id -> its split in the model's training data (none for images).
    stain_target : Mapping or None
        The stain normalization's fitted target.
    class_weight : Mapping or None
        Loss weight per class index.
    train_items, val_items : int or None
        Entries trained and validated on (None for an ensemble).
    train_seconds : float or None
        Training time (an ensemble: its folds' sum).
    deploy : str or None
        ``ensemble`` for the mean of fold models.
    folds : tuple of Mapping
        An ensemble's folds (``fold``, ``train_items``, ``val_items``, ``train_seconds``).
    tensorflow : str
        The TensorFlow version that trained it.
    """

    dataset: str
    fold: int | None
    classes: tuple[str, ...]
    input_pixels: int
    geometry: Geometry | None
    settings: Mapping[str, Any]
    encoder: Mapping[str, Any] | None
    init_model: str | None
    slide_splits: Mapping[str, str]
    stain_target: Mapping[str, Any] | None
    class_weight: Mapping[str, float] | None
    train_items: int | None
    val_items: int | None
    train_seconds: float | None
    deploy: str | None
    folds: tuple[Mapping[str, Any], ...]
    tensorflow: str

    def split_of(self, slide_id: str) -> str:
        """The split of a slide in the model's training data; ``external`` for a slide it never saw."""
        return str(self.slide_splits.get(slide_id, "external"))

    def geometry_problem(self, *, tile_size: int, tile_mpp: float, tolerance: float) -> str | None:
        """Why ``tile_size`` px at ``tile_mpp`` um/px are not what the model takes (None: they are)."""
        geometry = self.geometry
        same_size = geometry is not None and tile_size == geometry.tile_size
        same_mpp = geometry is not None and abs(tile_mpp / geometry.mpp - 1) <= tolerance
        if same_size and same_mpp:
            return None
        takes = str(geometry) if geometry else f"{self.input_pixels} px images of unknown resolution"
        return (
            f"geometry mismatch: the model of dataset {self.dataset!r} takes {takes}, but this slide's store "
            f"holds {tile_size} px tiles at {tile_mpp:.4f} um/px; rerun its ingest job"
        )

    def to_dict(self) -> dict[str, Any]:
        """The card as ``config.json`` holds it."""
        geometry = self.geometry
        return {
            "dataset": self.dataset,
            "fold": self.fold,
            "classes": list(self.classes),
            "input_pixels": self.input_pixels,
            "geometry": {
                "tile_size": geometry.tile_size if geometry else self.input_pixels,
                "mpp": geometry.mpp if geometry else None,
            },
            "model": dict(self.settings),
            "encoder": dict(self.encoder) if self.encoder else None,
            "init_model": self.init_model,
            "train_items": self.train_items,
            "val_items": self.val_items,
            "train_seconds": self.train_seconds,
            "slide_splits": dict(self.slide_splits),
            "class_weight": dict(self.class_weight) if self.class_weight else None,
            "stain_target": dict(self.stain_target) if self.stain_target else None,
            "deploy": self.deploy,
            "folds": [dict(f) for f in self.folds],
            "tensorflow": self.tensorflow,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        """A card from its ``config.json`` values."""
        geometry = values.get("geometry") or {}
        mpp = geometry.get("mpp")
        return cls(
            dataset=str(values["dataset"]),
            fold=values.get("fold"),
            classes=tuple(values["classes"]),
            input_pixels=int(values.get("input_pixels") or geometry.get("tile_size")),
            geometry=None if mpp is None else Geometry(float(mpp), int(geometry["tile_size"])),
            settings=dict(values.get("model") or {}),
            encoder=values.get("encoder"),
            init_model=values.get("init_model"),
            slide_splits=dict(values.get("slide_splits") or {}),
            stain_target=values.get("stain_target"),
            class_weight=values.get("class_weight"),
            train_items=values.get("train_items"),
            val_items=values.get("val_items"),
            train_seconds=values.get("train_seconds"),
            deploy=values.get("deploy"),
            folds=tuple(values.get("folds") or ()),
            tensorflow=str(values.get("tensorflow", "")),
        )

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a ``config.json``."""
        return cls.from_dict(read_json(path))

    def write(self, path: str | Path) -> None:
        """Write the card as ``config.json`` (atomically)."""
        write_json(self.to_dict(), path)
