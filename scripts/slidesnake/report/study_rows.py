"""What the study summary, the cross-site table and the regimes table say of each dataset, cohort and
model, in words and paths, from the validated config and the slide sheet (made at parse time, passed to
the report rules as params)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..cohorts import dataset_geometry, home_geometry, positive_class
from ..mil.settings import mil_section
from ..regimes import regime_settings, training_text
from ..roles import StudyRoles, slides_of
from ..settings import model_settings, stain_label


def _deployed_as(dataset: str, roles: StudyRoles) -> str:
    if dataset in roles.ensemble_datasets:
        return f"; mean of {roles.folds} fold models ({roles.folds}-fold cross-validation)"
    if dataset in roles.crossval_datasets:
        return f"; trained on the train split, {roles.folds}-fold cross-validation beside it"
    return ""


def _model_text(config: Mapping[str, Any], dataset: str, roles: StudyRoles) -> str:
    settings = model_settings(config, dataset)
    text = training_text(settings)
    if settings.kind == "mil":
        mil = mil_section(config, dataset)
        text += f", {mil['bag']} bags, {mil['folds']}-fold cross-validation, {mil['seeds']} seeds"
    elif settings.kind != "probe":
        text += f", {settings.epochs} epochs"
    return text + _deployed_as(dataset, roles)


def dataset_rows(config: Mapping[str, Any], sheet: pd.DataFrame, roles: StudyRoles) -> list[dict[str, Any]]:
    """One row per dataset for the study summary: what it is, its slides and patients, its model."""
    rows = []
    for name in roles.datasets:
        cfg = config["datasets"][name]
        geometry = dataset_geometry(config, name)
        slides = slides_of(config, sheet, name)
        rows.append(
            {
                "dataset": name,
                "kind": (
                    "patch folder"
                    if name in roles.patch_datasets
                    else f"slides ({cfg['labels']['source']} labels)"
                ),
                "slides": len(slides),
                "patients": sheet.loc[sheet["slide_id"].isin(slides), "patient_id"].nunique(),
                "classes": ", ".join(cfg["labels"]["classes"]),
                "positive_class": cfg["positive_class"],
                "model": _model_text(config, name, roles),
                "geometry": str(geometry) if geometry else "images of unknown MPP",
            }
        )
    return rows


def _cohort_stain(config: Mapping[str, Any], cohort: str) -> str:
    cfg = config["cohorts"][cohort]
    return stain_label(model_settings(config, cfg["model"], variant=cfg["variant"]))


def cohort_rows(config: Mapping[str, Any], sheet: pd.DataFrame, roles: StudyRoles) -> list[dict[str, Any]]:
    """One row per cohort for the study summary: its model and stain setting, its slides, its labels."""
    rows = []
    for name in roles.cohorts:
        cfg = config["cohorts"][name]
        rows.append(
            {
                "cohort": name,
                "model": cfg["model"] + (" (variant)" if cfg["variant"] else ""),
                "stain": _cohort_stain(config, name),
                "slides": f"those of dataset {cfg['slides']}" if cfg["slides"] else "its own sheet rows",
                "count": len(slides_of(config, sheet, name)),
                "labelled": name in roles.labelled_cohorts,
                "positive_class": positive_class(config, name),
                "geometry": str(home_geometry(config, name)),
            }
        )
    return rows


def cross_site_rows(config: Mapping[str, Any], roles: StudyRoles) -> list[dict[str, str]]:
    """The cross-site cohorts: name, model, slides' dataset and the model's stain setting."""
    return [
        {
            "cohort": cohort,
            "model": config["cohorts"][cohort]["model"],
            "slides": config["cohorts"][cohort]["slides"],
            "stain": _cohort_stain(config, cohort),
        }
        for cohort in roles.cross_site_cohorts
    ]


def regime_rows(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every model the regimes table compares: each regime dataset's own model (in config order), then its
    regimes (in name order), with the paths of its model, card and entries."""
    rows = []
    for dataset in [d for d, c in config["datasets"].items() if c["regimes"]]:
        cfg = config["datasets"][dataset]
        for regime in ["model", *sorted(cfg["regimes"])]:
            own = regime == "model"
            folder = f"results/models/{dataset}" + ("" if own else f"/regimes/{regime}")
            settings = model_settings(config, dataset) if own else regime_settings(config, dataset, regime)
            rows.append(
                {
                    "dataset": dataset,
                    "regime": regime,
                    "training": training_text(settings),
                    "model_path": f"{folder}/model.keras",
                    "model_json": f"{folder}/config.json",
                    "entries_tsv": f"results/entries/{dataset}.tsv",
                    "classes": cfg["labels"]["classes"],
                    "positive_class": cfg["positive_class"],
                    "image_size": cfg.get("patches", {}).get("image_size"),
                }
            )
    return rows
