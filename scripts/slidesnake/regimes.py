"""Transfer-learning regimes: the model kinds of a study checked before any job, and the regimes table.

A dataset's model is a network trained on pixels (``kind: cnn``: from scratch, from ImageNet or a weights
file, or from another model with ``init``) or a linear probe on an encoder's stored features (``kind:
probe``). ``datasets: <name>: regimes`` trains the same dataset in other ways, each on its train split;
``results/reports/regimes.tsv`` compares them on its test split (:data:`COLUMNS`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import StudyError, listing
from .settings import ModelSettings, model_settings
from .tables import StoredTable

#: A regime's name (a folder name).
REGIME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: The ``regime`` of the dataset's own model in the regimes table.
CONFIGURED = "model"
#: The columns of ``results/reports/regimes.tsv``, in order.
COLUMNS = (
    "dataset",
    "regime",
    "training",
    "n",
    "patients",
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "auc_ci_method",
    "balanced_accuracy",
    "balanced_accuracy_ci_low",
    "balanced_accuracy_ci_high",
    "balanced_accuracy_ci_method",
    "train_seconds",
    "note",
)
#: ``results/reports/regimes.tsv`` (rule ``regimes``): :data:`COLUMNS`, a row per regime of each dataset.
REGIMES_TABLE = StoredTable(
    paths=("results/reports/regimes.tsv",),
    columns={
        c: "text" if c in ("dataset", "regime", "training", "note") or c.endswith("_method") else "number"
        for c in COLUMNS
    },
)


def regime_settings(config: Mapping[str, Any], dataset: str, regime: str) -> ModelSettings:
    """The model settings of one of a dataset's regimes (the dataset's, changed by the regime's)."""
    return model_settings(config, dataset, variant=config["datasets"][dataset]["regimes"][regime])


def training_text(settings: ModelSettings) -> str:
    """How a model is trained, in words: ``linear probe (logistic) on encoder uni``, ``fine-tuned from
    site_a``, ``from scratch``...
    """
    if settings.kind == "probe":
        return f"linear probe ({settings.classifier}) on encoder {settings.encoder}"
    if settings.kind == "pretrained":
        return f"pretrained classifier {settings.encoder} (not trained here)"
    if settings.kind == "mil":
        return f"attention MIL and mean pooling on encoder {settings.encoder}"
    if settings.init:
        return f"{settings.backbone} fine-tuned from {settings.init}"
    if settings.weights:
        return f"{settings.backbone} from {settings.weights} weights"
    return f"{settings.backbone} from scratch"


def _all_settings(config: Mapping[str, Any]) -> Iterator[tuple[str, str, ModelSettings]]:
    """(config key path, dataset, settings) of every model a study trains."""
    for dataset, section in config["datasets"].items():
        yield f"datasets: {dataset}: model", dataset, model_settings(config, dataset)
        for regime in section.get("regimes", {}):
            yield f"datasets: {dataset}: regimes: {regime}", dataset, regime_settings(config, dataset, regime)
    for cohort, section in config["cohorts"].items():
        if section.get("variant"):
            variant = model_settings(config, section["model"], variant=section["variant"])
            yield f"cohorts: {cohort}: variant", section["model"], variant


def check_models(config: Mapping[str, Any], *, ensembles: Sequence[str], base_dir: Path) -> None:
    """Check every model's kind, encoder and init, and every regime's name, before any job.

    Parameters
    ----------
    config : Mapping
        The validated config.
    ensembles : sequence of str
        Datasets whose deployed model is an ensemble of fold models (no ``init`` from them).
    base_dir : Path
        The study folder (relative ``init`` files).

    Raises
    ------
    StudyError
        Every problem, one line each naming the key.
    """
    encoders = config["encoders"]
    problems = []
    for dataset, section in config["datasets"].items():
        for regime in section.get("regimes", {}):
            if not REGIME_NAME.fullmatch(regime) or regime == CONFIGURED:
                problems.append(
                    f"datasets: {dataset}: regimes: {regime!r} is not a regime name (letters, digits, "
                    f"_ . -; not {CONFIGURED!r}, the dataset's own model)"
                )
    for cohort, section in config["cohorts"].items():
        if section["model"] in config["datasets"] and model_settings(config, section["model"]).kind == "mil":
            problems.append(
                f"cohorts: {cohort}: model: {section['model']!r} is a MIL dataset: predicting other slides "
                "with its networks is not supported yet (its slides are all predicted out of fold)"
            )
    for where, dataset, settings in _all_settings(config):
        if settings.kind == "mil":
            problems += _mil_problems(where, dataset, settings, config, encoders)
            continue
        if settings.kind == "probe":
            problems += _probe_problems(where, dataset, settings, config, encoders)
            continue
        if settings.kind == "pretrained":
            problems += _pretrained_problems(where, settings, encoders)
            continue
        if settings.encoder is not None:
            problems.append(f"{where}: encoder: only a probe (kind: probe) has an encoder")
        if settings.init is not None:
            problems += _init_problems(where, dataset, settings.init, config, ensembles, base_dir)
    if problems:
        raise StudyError(listing("config: models", problems))


def _feature_model_problems(
    where: str,
    dataset: str,
    settings: ModelSettings,
    config: Mapping[str, Any],
    encoders: Mapping[str, Any],
    *,
    model: str,
) -> list[str]:
    """Problems of a model learning from an encoder's stored features (`model`: 'a probe', 'MIL')."""
    known = sorted(encoders)
    if settings.encoder is None:
        return [f"{where}: encoder: {model} needs one (a key of config encoders: {known})"]
    if settings.encoder not in encoders:
        return [f"{where}: encoder: {settings.encoder!r} is not an encoder of config encoders {known}"]
    problems = []
    section = encoders[settings.encoder]
    if section.get("source") == "dataset":
        source = section.get("dataset")
        if source == dataset:
            problems.append(f"{where}: encoder: {settings.encoder!r} is this dataset's own model")
        elif source in config["datasets"] and model_settings(config, source).kind == "probe":
            problems.append(f"{where}: encoder: {settings.encoder!r} is dataset {source!r}'s model, a probe")
    if settings.init is not None:
        problems.append(f"{where}: init: {model} does not start from a network (init is for kind cnn)")
    return problems


def _probe_problems(
    where: str,
    dataset: str,
    settings: ModelSettings,
    config: Mapping[str, Any],
    encoders: Mapping[str, Any],
) -> list[str]:
    problems = _feature_model_problems(where, dataset, settings, config, encoders, model="a probe")
    stride = config["prediction"]["stride"]
    if stride is not None:
        problems.append(
            f"{where}: kind: probe with 'prediction: stride: {stride}': a probe predicts stored tiles only "
            "(their features); set stride null"
        )
    return problems


def _mil_problems(
    where: str,
    dataset: str,
    settings: ModelSettings,
    config: Mapping[str, Any],
    encoders: Mapping[str, Any],
) -> list[str]:
    """A MIL model learns slide or patient labels from an encoder's features, as a dataset's own model."""
    if where.startswith("cohorts"):
        return [f"{where}: kind: mil: a MIL dataset has no cohort variants (not yet)"]
    if ": regimes: " in where:
        return [f"{where}: kind: mil: MIL is not a regime (give the slides a dataset of their own)"]
    problems = _feature_model_problems(where, dataset, settings, config, encoders, model="MIL")
    section = config["datasets"][dataset]
    if section["labels"]["source"] not in ("slide", "patients"):
        problems.append(
            f"datasets: {dataset}: labels: source: {section['labels']['source']!r}: MIL learns slide labels "
            "(source slide) or patient labels (source patients)"
        )
    if section.get("regimes"):
        problems.append(f"datasets: {dataset}: regimes: a MIL dataset has none (not yet)")
    return problems


def _pretrained_problems(where: str, settings: ModelSettings, encoders: Mapping[str, Any]) -> list[str]:
    known = sorted(encoders)
    if settings.encoder is None:
        return [
            f"{where}: encoder: a pretrained model needs the entry of config encoders {known} of its file"
        ]
    if settings.encoder not in encoders:
        return [f"{where}: encoder: {settings.encoder!r} is not an entry of config encoders {known}"]
    problems = []
    source = encoders[settings.encoder].get("source")
    if source not in ("keras_file", "onnx"):
        problems.append(
            f"{where}: encoder: {settings.encoder!r} is a {source}; a pretrained model is keras_file or onnx"
        )
    if settings.init is not None:
        problems.append(f"{where}: init: a pretrained model is not trained (init is for kind cnn)")
    return problems


def _init_problems(
    where: str, dataset: str, init: str, config: Mapping[str, Any], ensembles: Sequence[str], base_dir: Path
) -> list[str]:
    if init in config["datasets"]:
        if init == dataset:
            return [f"{where}: init: {init!r} is this dataset itself"]
        if init in ensembles:
            return [f"{where}: init: {init!r} deploys an ensemble of fold models; use its deploy: refit"]
        return []
    if not init.endswith(".keras"):
        return [
            f"{where}: init: {init!r} is neither a dataset {sorted(config['datasets'])} nor a .keras file"
        ]
    path = Path(init) if Path(init).is_absolute() else base_dir / init
    return [] if path.is_file() else [f"{where}: init: file not found: {path}"]


def regimes_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The regimes table from one row per model (:data:`COLUMNS`; missing values empty)."""
    return pd.DataFrame([{c: row.get(c) for c in COLUMNS} for row in rows], columns=list(COLUMNS))
