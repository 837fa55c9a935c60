"""What each dataset and cohort of a study is, from its validated config.

The workflow's rules and the study summary share these lists: which datasets are patch folders, learn
slide labels (MIL), come from outside (pretrained), are cross-validated or deployed as an ensemble of
their fold models; which cohorts predict another dataset's slides (cross-site), are labelled, or use a
variant of their model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .cohorts import cohort_labels
from .settings import model_settings


@dataclass(frozen=True, kw_only=True)
class StudyRoles:
    """The datasets and cohorts of a study by what they are (each tuple sorted, slide datasets first).

    Attributes
    ----------
    patch_datasets, slide_datasets : tuple of str
        Datasets of labelled patch folders (``labels: source: patches``), and of the sheet's slides.
    datasets : tuple of str
        Slide datasets, then patch datasets.
    pretrained_datasets, mil_datasets : tuple of str
        Datasets whose model comes from outside (kind ``pretrained``), or learns slide or patient labels
        from stored features (kind ``mil``).
    crossval_datasets, ensemble_datasets : tuple of str
        Datasets trained in ``splits: folds`` folds (none when folds < 2), and those of them deployed as
        the mean of their fold models (``splits: deploy: ensemble``).
    cohorts, external_cohorts, labelled_cohorts, variant_cohorts, cross_site_cohorts : tuple of str
        Every cohort; those predicting a dataset's slides; those with labels (their own or the reused
        dataset's); those predicted by a variant of their model; those whose slides are another dataset's
        than their model's (the cross-site table).
    folds : int
        ``splits: folds``.
    """

    patch_datasets: tuple[str, ...]
    slide_datasets: tuple[str, ...]
    datasets: tuple[str, ...]
    pretrained_datasets: tuple[str, ...]
    mil_datasets: tuple[str, ...]
    crossval_datasets: tuple[str, ...]
    ensemble_datasets: tuple[str, ...]
    cohorts: tuple[str, ...]
    external_cohorts: tuple[str, ...]
    labelled_cohorts: tuple[str, ...]
    variant_cohorts: tuple[str, ...]
    cross_site_cohorts: tuple[str, ...]
    folds: int


def study_roles(config: Mapping[str, Any]) -> StudyRoles:
    """The roles of a validated config's datasets and cohorts."""
    datasets_cfg, cohorts_cfg = config["datasets"], config["cohorts"]
    patch = tuple(sorted(d for d, c in datasets_cfg.items() if c["labels"]["source"] == "patches"))
    slide = tuple(sorted(set(datasets_cfg) - set(patch)))
    datasets = slide + patch
    kinds = {d: model_settings(config, d).kind for d in datasets}
    pretrained = tuple(d for d in datasets if kinds[d] == "pretrained")
    mil = tuple(d for d in slide if kinds[d] == "mil")
    folds = int(config["splits"]["folds"])
    crossval = tuple(d for d in datasets if d not in pretrained + mil) if folds >= 2 else ()
    cohorts = tuple(sorted(cohorts_cfg))
    external = tuple(c for c in cohorts if cohorts_cfg[c]["slides"])
    return StudyRoles(
        patch_datasets=patch,
        slide_datasets=slide,
        datasets=datasets,
        pretrained_datasets=pretrained,
        mil_datasets=mil,
        crossval_datasets=crossval,
        ensemble_datasets=crossval if config["splits"]["deploy"] == "ensemble" else (),
        cohorts=cohorts,
        external_cohorts=external,
        labelled_cohorts=tuple(c for c in cohorts if cohort_labels(config, c)),
        variant_cohorts=tuple(c for c in cohorts if cohorts_cfg[c]["variant"]),
        cross_site_cohorts=tuple(c for c in external if cohorts_cfg[c]["slides"] != cohorts_cfg[c]["model"]),
        folds=folds,
    )


def slides_of(config: Mapping[str, Any], sheet: pd.DataFrame, name: str) -> list[str]:
    """The slides of a dataset or cohort (a cohort reusing a dataset's slides: those), in sheet order."""
    reused = config["cohorts"].get(name, {}).get("slides")
    return sheet.loc[sheet["dataset"] == (reused or name), "slide_id"].tolist()
