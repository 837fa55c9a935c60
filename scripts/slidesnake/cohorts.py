"""Where each slide's model comes from, the geometry it is tiled at, and the checks of cohorts.

A *dataset* trains a model; a *cohort* is a set of slides predicted with a named dataset's model,
without training or split: its own sheet rows (unlabelled, or labelled as an external test set),
or the slides of another dataset (``slides: <dataset>``, e.g. site A's model on site B's slides).
Every slide has one *home* (the dataset or cohort its sheet row names) and is tiled at the
geometry of its home's model: the model's microns per pixel and tile side. Only the workflow
(``workflow/rules/common.smk``) and the tests use this module; everything here runs before any job.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .checksums import file_sha256
from .errors import StudyError, listing


@dataclass(frozen=True)
class Geometry:
    """What a model takes: tiles of ``tile_size`` pixels at ``mpp`` microns per pixel."""

    mpp: float
    tile_size: int

    def __str__(self) -> str:
        return f"{self.tile_size} px tiles at {self.mpp:g} um/px"


def dataset_geometry(config: Mapping[str, Any], dataset: str) -> Geometry | None:
    """The geometry a dataset's model is trained at; None for a patch dataset that states no ``mpp``."""
    cfg = config["datasets"][dataset]
    if cfg["labels"]["source"] == "patches":
        mpp = cfg["patches"]["mpp"]
        return None if mpp is None else Geometry(float(mpp), int(cfg["patches"]["image_size"]))
    mpp = cfg["target_mpp"] or config["resolution"]["target_mpp"]
    return Geometry(float(mpp), int(cfg["tile_size"] or config["tiling"]["tile_size"]))


def model_of(config: Mapping[str, Any], name: str) -> str:
    """The dataset whose model predicts the slides of ``name`` (a dataset is its own model)."""
    return name if name in config["datasets"] else config["cohorts"][name]["model"]


def home_geometry(config: Mapping[str, Any], name: str) -> Geometry:
    """The geometry the slides of a dataset or cohort are tiled at: their model's."""
    geometry = dataset_geometry(config, model_of(config, name))
    if geometry is None:  # excluded by check_cohorts before any job
        msg = f"cohort {name!r}: its model has no geometry"
        raise StudyError(msg)
    return geometry


def cohort_labels(config: Mapping[str, Any], cohort: str) -> Mapping[str, Any] | None:
    """The labels a cohort is evaluated with: its own, or those of the dataset whose slides it reuses."""
    cfg = config["cohorts"][cohort]
    return config["datasets"][cfg["slides"]]["labels"] if cfg["slides"] else cfg["labels"]


def positive_class(config: Mapping[str, Any], name: str) -> str:
    """The class of a dataset's or cohort's heatmaps and slide scores."""
    if name in config["datasets"]:
        return config["datasets"][name]["positive_class"]
    return (
        config["cohorts"][name]["positive_class"]
        or config["datasets"][model_of(config, name)]["positive_class"]
    )


def check_cohorts(config: Mapping[str, Any], sheet: pd.DataFrame) -> None:
    """Check every cohort against the config and the sheet before any job: one error listing every problem.

    Checks: the named model is a dataset of the config and its geometry is known; a cohort reusing
    a dataset's slides is tiled at its model's geometry; the classes and positive class fit the
    model's classes; ``prediction: stride`` divides every tile size; and no cohort slide is in the
    model's training data (same patient, same file, or a file with identical bytes).

    Raises
    ------
    StudyError
        Naming the cohort, the config key and, for overlaps, both slides.
    """
    datasets, cohorts = config["datasets"], config["cohorts"]
    problems = []
    for name in sorted(set(datasets) & set(cohorts)):
        problems.append(f"'{name}' is both a dataset and a cohort; give them different names")
    for cohort, cfg in cohorts.items():
        problems += _cohort_problems(config, sheet, cohort, cfg)
    stride = config["prediction"]["stride"]
    for dataset in datasets:
        geometry = dataset_geometry(config, dataset)
        if stride and geometry and geometry.tile_size % stride:
            problems.append(
                f"config 'prediction: stride' = {stride} does not divide the {geometry.tile_size} px "
                f"tiles of dataset {dataset!r}"
            )
    if problems:
        raise StudyError(listing("config 'cohorts'", problems))


def _cohort_problems(
    config: Mapping[str, Any], sheet: pd.DataFrame, cohort: str, cfg: Mapping[str, Any]
) -> list[str]:
    datasets = config["datasets"]
    model = cfg["model"]
    if model not in datasets:
        return [f"cohort {cohort!r}: 'model' = {model!r} is not a dataset of the config {sorted(datasets)}"]
    model_classes = list(datasets[model]["labels"]["classes"])
    geometry = dataset_geometry(config, model)
    problems = []
    if geometry is None:
        problems.append(
            f"cohort {cohort!r}: the model of dataset {model!r} cannot be deployed on slides: the microns "
            f"per pixel of its images are unknown; set 'datasets: {model}: patches: mpp'"
        )
    reused = cfg["slides"]
    if reused:
        if reused not in datasets or datasets[reused]["labels"]["source"] == "patches":
            return [
                *problems,
                f"cohort {cohort!r}: 'slides' = {reused!r} is not a slide dataset of the config",
            ]
        if reused == model:
            problems.append(f"cohort {cohort!r}: 'slides' and 'model' are both {model!r}: that is no cohort")
        if geometry and dataset_geometry(config, reused) != geometry:
            problems.append(
                f"cohort {cohort!r}: geometry mismatch: the model of {model!r} takes {geometry}, but "
                f"the slides of {reused!r} are tiled as {dataset_geometry(config, reused)}; set 'datasets: "
                f"{reused}: tile_size' and 'target_mpp' to the model's, or give the cohort its own sheet rows"
            )
    labels = cohort_labels(config, cohort)
    if labels is not None:
        extra = sorted(set(labels["classes"]) - set(model_classes))
        if extra:
            problems.append(
                f"cohort {cohort!r}: classes {extra} are not classes of the model of {model!r} "
                f"{model_classes}"
            )
    positive = positive_class(config, cohort)
    if positive not in model_classes:
        problems.append(
            f"cohort {cohort!r}: 'positive_class' = {positive!r} is not a class of the model of "
            f"{model!r} {model_classes}"
        )
    problems += _overlaps(sheet, cohort, reused or cohort, model)
    return problems


def _rows(sheet: pd.DataFrame, name: str) -> pd.DataFrame:
    return sheet[sheet["dataset"] == name]


def _overlaps(sheet: pd.DataFrame, cohort: str, slides_of: str, model: str) -> list[str]:
    """Cohort slides that are in the model's training data: same patient, same file, or identical bytes."""
    ours, theirs = _rows(sheet, slides_of), _rows(sheet, model)
    if ours.empty or theirs.empty:
        return []
    problems = training_overlaps(ours, theirs, _identical_files(ours, theirs), model=model)
    return [f"cohort {cohort!r}: {problem}" for problem in problems]


def training_overlaps(
    ours: pd.DataFrame, theirs: pd.DataFrame, identical: Iterable[tuple[str, str]], *, model: str
) -> list[str]:
    """What puts a cohort's slides in its model's training data, one problem each: a patient with slides
    on both sides, a cohort slide with the same content as a training slide.

    Parameters
    ----------
    ours, theirs : pandas.DataFrame
        The cohort's slides and the model's (``slide_id``, ``patient_id``).
    identical : iterable of (str, str)
        Pairs of a cohort slide and a training slide with the same content.
    model : str
        The model's dataset, for the messages.
    """
    problems = [
        f"patient {patient!r} has slides {_ids(ours, patient)} in the cohort "
        f"and {_ids(theirs, patient)} in the training data of model {model!r}"
        for patient in sorted(set(ours["patient_id"]) & set(theirs["patient_id"]))
    ]
    problems += [
        f"slide {ours_id!r} has the same content as slide {theirs_id!r} of model {model!r}'s training data"
        for ours_id, theirs_id in identical
    ]
    return problems


def _ids(rows: pd.DataFrame, patient: str) -> list[str]:
    return rows.loc[rows["patient_id"] == patient, "slide_id"].tolist()


def _identical_files(ours: pd.DataFrame, theirs: pd.DataFrame) -> list[tuple[str, str]]:
    """Pairs of slides with the same file, or files of equal size and SHA-256 (only those are hashed)."""

    def stat(rows: pd.DataFrame) -> dict[str, tuple[str, int]]:
        found = {}
        for slide, path in zip(rows["slide_id"], rows["path"], strict=True):
            if os.path.isfile(path):
                found[slide] = (os.path.realpath(path), os.path.getsize(path))
        return found

    mine, other = stat(ours), stat(theirs)
    by_path = {path: slide for slide, (path, _) in other.items()}
    by_size: dict[int, list[tuple[str, str]]] = {}
    for slide, (path, size) in other.items():
        by_size.setdefault(size, []).append((slide, path))
    pairs = []
    for slide, (path, size) in mine.items():
        if path in by_path:
            pairs.append((slide, by_path[path]))
            continue
        digest = None
        for other_slide, other_path in by_size.get(size, []):
            digest = digest or file_sha256(path)
            if digest == file_sha256(other_path):
                pairs.append((slide, other_slide))
    return pairs
