"""Typed, frozen settings of every stage, made from the validated config.

Defaults live in one place only, the config schema (``workflow/schemas/config.schema.yaml``):
the workflow validates the config, which fills every default in, and each settings class
takes its validated section as it is. A key that is missing or unknown is a
:class:`~slidesnake.errors.StudyError` naming the section, so a settings object never
holds a value nobody chose.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self, get_args, get_origin

from .errors import StudyError

Compressor = Literal["zstd", "blosc-lz4", "none", "jpeg"]
Backbone = Literal["small_cnn", "mobilenet_v2", "efficientnet_b0", "resnet50", "inception_v3"]
Optimizer = Literal["adam", "adamw", "sgd"]
LabelSource = Literal["annotations", "slide", "patches"]
Duplicates = Literal["merge", "error"]
Deploy = Literal["ensemble", "refit"]
SlideScore = Literal["top_decile_mean", "mean", "max"]
Normalization = Literal["none", "macenko", "reinhard"]


class ConfigSection:
    """Every settings class: ``from_config`` (a validated config section) and ``to_dict`` (JSON-ready)."""

    @classmethod
    def from_config(cls, section: Mapping[str, Any], *, where: str = "") -> Self:
        """Build the settings from a validated config section.

        Parameters
        ----------
        section : Mapping
            The section with every key of the class (the schema fills in defaults).
        where : str
            The section's key path, for error messages (e.g. ``datasets: site_a: model``).

        Returns
        -------
        Self
            The frozen settings.

        Raises
        ------
        StudyError
            When a key is missing or unknown.
        """
        where = where or cls.__name__
        names = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
        missing, unknown = sorted(names - set(section)), sorted(set(section) - names)
        if missing or unknown:
            msg = f"config '{where}': missing keys {missing}, unknown keys {unknown} (see config/README.md)"
            raise StudyError(msg)
        hints = typing.get_type_hints(cls)
        values = {name: _convert(hints[name], section[name], f"{where}: {name}") for name in names}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The settings as config keys, JSON-ready (for ``config.json`` beside a model, a MIL card)."""
        return dataclasses.asdict(self)


def _convert(hint: Any, value: Any, where: str) -> Any:
    """Turn a config value into the field's frozen type (nested settings, tuples, read-only mappings)."""
    options = get_args(hint) if get_origin(hint) in (types.UnionType, typing.Union) else (hint,)
    for option in options:
        if isinstance(option, type) and issubclass(option, ConfigSection) and isinstance(value, Mapping):
            return option.from_config(value, where=where)
    if isinstance(value, Mapping):
        return types.MappingProxyType(dict(value))
    if isinstance(value, list):
        return tuple(value)
    return value


@dataclass(frozen=True, kw_only=True)
class ResolutionPolicy(ConfigSection):
    """How the tile resolution is chosen (config ``resolution``).

    Attributes
    ----------
    target_mpp : float
        Microns per pixel of the tiles.
    tolerance : float
        Relative MPP difference between a pyramid level and the target that counts as equal.
    mpp_override : float or None
        Level-0 MPP for slides whose files lack one (the sheet column ``mpp`` wins).
    """

    target_mpp: float
    tolerance: float
    mpp_override: float | None


@dataclass(frozen=True, kw_only=True)
class TissueSettings(ConfigSection):
    """Tissue detection (config ``tissue``): see :func:`slidesnake.tissue.tissue_mask`.

    Attributes
    ----------
    mask_mpp : float
        Resolution of the mask and thumbnail.
    max_brightness, min_saturation : float
        HSV value above which a pixel is background; floor of Otsu's saturation threshold.
    closing_um, min_object_um2 : float
        Closing radius; smallest tissue piece kept.
    min_tissue_fraction : float
        A tile is kept when at least this share of it is tissue.
    background : {'auto', 'bright', 'dark'}
        The slides' background: ``auto`` detects it per slide (dark: fluorescence).
    """

    mask_mpp: float
    max_brightness: float
    min_saturation: float
    closing_um: float
    min_object_um2: float
    min_tissue_fraction: float
    background: Literal["auto", "bright", "dark"]


@dataclass(frozen=True, kw_only=True)
class TilingSettings(ConfigSection):
    """Tiles and their storage (config ``tiling``).

    Attributes
    ----------
    tile_size : int
        Tile side in pixels at the target resolution; also the Zarr chunk.
    compressor : {'zstd', 'blosc-lz4', 'none', 'jpeg'}
        Chunk encoding (see :func:`slidesnake.store.codecs.make_compressor`).
    jpeg_quality : int
        Quality of the ``jpeg`` compressor.
    jpeg_dct_scaling : bool
        Where the slide level is exactly 2, 4 or 8 times finer than the target and has JPEG
        tiles, decode them reduced (libjpeg's DCT scaling) instead of averaging full-size pixels.
    """

    tile_size: int
    compressor: Compressor
    jpeg_quality: int
    jpeg_dct_scaling: bool


@dataclass(frozen=True, kw_only=True)
class SplitFractions(ConfigSection):
    """Wanted shares of patient groups per split."""

    train: float
    val: float
    test: float

    def of(self, split: str) -> float:
        """The share of ``split`` (``train``, ``val`` or ``test``)."""
        return float(getattr(self, split))


@dataclass(frozen=True, kw_only=True)
class SplitSettings(ConfigSection):
    """Splits (config ``splits``): see :func:`slidesnake.splits.make_splits`.

    Attributes
    ----------
    seed : int
        Seed of the shuffling.
    fractions : SplitFractions
        Shares of train, val and test.
    folds : int
        k of the cross-validation folds (1: none).
    site_column : str or None
        Column naming each item's site: with k folds, all patients of a site share a fold.
    deploy : {'ensemble', 'refit'}
        With k folds, the deployed model: the fold models' mean, or one retrained model.
    duplicates : {'merge', 'error'}
        Identical items of different patients: put together, or refuse.
    """

    seed: int
    fractions: SplitFractions
    folds: int
    site_column: str | None
    deploy: Deploy
    duplicates: Duplicates


@dataclass(frozen=True, kw_only=True)
class LabelSettings(ConfigSection):
    """Where a dataset's labels come from (config ``datasets: <name>: labels``).

    Attributes
    ----------
    source : {'annotations', 'slide', 'patches'}
        Region annotations per tile, the sheet's slide label, or a patch folder.
    classes : tuple of str
        The dataset's classes, in model output order.
    annotation_classes : Mapping
        Annotation class name -> dataset class.
    unannotated : str or None
        Class of tissue tiles outside every region (None: left out).
    min_fraction : float
        Share of a tile a class's regions must cover for the tile to take it.
    ignore : tuple of str
        Glob patterns of annotation classes whose regions are dropped (e.g. ``Region*``).
    exclude : tuple of str
        Glob patterns of annotation classes whose regions leave their tiles out (``Ignore*``, pen).
    """

    source: LabelSource
    classes: tuple[str, ...]
    annotation_classes: Mapping[str, str]
    unannotated: str | None
    min_fraction: float
    ignore: tuple[str, ...]
    exclude: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class PatchSettings(ConfigSection):
    """A patch-folder dataset (config ``datasets: <name>: patches``): see :mod:`slidesnake.patches`."""

    root: str | None
    label_pattern: str | None
    labels_csv: str | None
    patient_pattern: str | None
    split_column: str | None
    image_size: int
    mpp: float | None


@dataclass(frozen=True, kw_only=True)
class AugmentSettings(ConfigSection):
    """Training-time augmentation: flips, 90-degree rotations, colour jitter (0-1 strength), and stain
    augmentation in HED space (per-channel scale ``U(1 - hed_scale, 1 + hed_scale)`` and shift
    ``U(-hed_shift, hed_shift)``, Tellez et al. 2019; 0 and 0: off).
    """

    flips: bool
    rotations: bool
    color_jitter: float
    hed_scale: float
    hed_shift: float


@dataclass(frozen=True, kw_only=True)
class StainSettings(ConfigSection):
    """Stain normalization of a dataset's tiles, part of its saved model (config ``model: stain``).

    Attributes
    ----------
    normalization : {'none', 'macenko', 'reinhard'}
        The method (see :mod:`slidesnake.stain`).
    reference : str or None
        An image file or a folder of image tiles to fit the target on; None: the training split's tiles.
    """

    normalization: Normalization
    reference: str | None


@dataclass(frozen=True, kw_only=True)
class ModelSettings(ConfigSection):
    """A dataset's model (config ``model`` merged with ``datasets: <name>: model``).

    Attributes
    ----------
    kind : {'cnn', 'probe', 'pretrained', 'mil'}
        A network trained on pixels, a linear probe on stored tile features, or a classifier from outside.
    encoder : str or None
        probe: the encoder (config ``encoders``) whose features it learns from; pretrained: the entry of
        config ``encoders`` describing the classifier.
    outputs : {'probabilities', 'logits'}
        pretrained: what the classifier's output is.
    classifier : {'logistic', 'svm'}
        probe: logistic regression, or a linear SVM with Platt scaling.
    init : str or None
        cnn: a dataset whose trained model (or a ``.keras`` file) gives the starting weights.
    backbone : str
        One of :data:`Backbone`.
    input_size : int
        Tiles are resized to this inside the model.
    weights : str or None
        None (random), ``imagenet``, or a weights file of the backbone.
    alpha : float
        MobileNetV2 width multiplier.
    optimizer : {'adam', 'adamw', 'sgd'}
    learning_rate, fine_tune_learning_rate : float
        Rates of the first phase and of fine-tuning (None: a tenth of ``learning_rate``
        after frozen epochs, else ``learning_rate``).
    epochs, frozen_epochs : int
        All epochs; the first ones with the backbone frozen.
    unfreeze : 'all' or int
        Backbone layers trained after the frozen epochs, from the top.
    batch_size : int
    dropout : float
    patience : int
        Early stopping on validation loss; the best epoch's weights are kept.
    class_weight : 'balanced' or None
    augment : AugmentSettings or None
    stain : StainSettings
    seed : int
    """

    kind: Literal["cnn", "probe", "pretrained", "mil"]
    encoder: str | None
    outputs: Literal["probabilities", "logits"]
    classifier: Literal["logistic", "svm"]
    init: str | None
    backbone: Backbone
    input_size: int
    weights: str | None
    alpha: float
    optimizer: Optimizer
    learning_rate: float
    epochs: int
    frozen_epochs: int
    unfreeze: Literal["all"] | int
    fine_tune_learning_rate: float | None
    batch_size: int
    dropout: float
    patience: int
    class_weight: Literal["balanced"] | None
    augment: AugmentSettings | None
    stain: StainSettings
    seed: int


@dataclass(frozen=True, kw_only=True)
class PredictionSettings(ConfigSection):
    """How slides are predicted (config ``prediction``).

    Attributes
    ----------
    stride : int or None
        Target pixels between predicted tiles (a divisor of the tile size); None: each stored tile once.
    threshold : float
        Positive-class probability at which a tile or a slide score counts as positive.
    slide_score : {'top_decile_mean', 'mean', 'max'}
        How a slide's score is made from its tiles (see :func:`slidesnake.metrics.slide_score`).
    """

    stride: int | None
    threshold: float
    slide_score: SlideScore


@dataclass(frozen=True, kw_only=True)
class EvaluationSettings(ConfigSection):
    """The confidence intervals (config ``evaluation``): patient-bootstrap resamples and their seed."""

    bootstrap: int
    seed: int


def model_settings(
    config: Mapping[str, Any], dataset: str, *, variant: Mapping[str, Any] | None = None
) -> ModelSettings:
    """The dataset's model settings: the config's ``model`` updated by the dataset's ``model``.

    Nested settings (``augment``, ``stain``) are merged key by key; the config is not modified.

    Parameters
    ----------
    config : Mapping
        The validated workflow config.
    dataset : str
        A key of ``config['datasets']``.
    variant : Mapping, optional
        A cohort's ``variant``: settings changed on top of the dataset's (a variant model).

    Returns
    -------
    ModelSettings
        The merged settings.
    """
    merged = {
        key: dict(value) if isinstance(value, Mapping) else value for key, value in config["model"].items()
    }
    for changes in (config["datasets"][dataset].get("model", {}), variant or {}):
        for key, value in changes.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
                merged[key].update(value)
            else:
                merged[key] = value
    return ModelSettings.from_config(merged, where=f"datasets: {dataset}: model")


def stain_label(settings: ModelSettings) -> str:
    """What a model does about stain, in a word: its normalization and/or ``hed`` augmentation, or none."""
    parts = [] if settings.stain.normalization == "none" else [settings.stain.normalization]
    augment = settings.augment
    if augment is not None and (augment.hed_scale > 0 or augment.hed_shift > 0):
        parts.append("hed")
    return "+".join(parts) or "none"
