"""Validate the workflow config against its schema, filling in every default, before any job starts.

Only the workflow (``workflow/rules/common.smk``) and the tests use this module;
rules get their settings from the validated config through ``params``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import StudyError, listing


def _with_defaults(validator_class: Any) -> Any:
    """A jsonschema validator class that fills in each property's ``default`` before checking it."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator: Any, props: Mapping, instance: Any, schema: Mapping) -> Any:
        if isinstance(instance, dict):
            for name, subschema in props.items():
                if "default" in subschema and name not in instance:
                    instance[name] = _copy(subschema["default"])
        yield from check_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def validate_config(config: dict, schema_path: str | Path) -> None:
    """Validate the workflow config against its schema and fill in every default, in place.

    Parameters
    ----------
    config : dict
        The config as Snakemake loaded it.
    schema_path : str or Path
        ``workflow/schemas/config.schema.yaml``.

    Raises
    ------
    StudyError
        Listing every problem on one line each: the config key path and what is allowed.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = [f"config key '{_key_path(e.absolute_path)}': {_short(e)}" for e in errors]
        raise StudyError(listing("config", lines))
    problems = _cross_field_problems(config)
    if problems:
        raise StudyError(listing("config", problems))


#: Split fractions must sum to 1 within this.
FRACTION_SUM_TOLERANCE = 1e-6


def _cross_field_problems(config: Mapping[str, Any]) -> list[str]:
    """What the schema cannot check: values that must name each other, sums."""
    problems = []
    fractions = config["splits"]["fractions"]
    total = sum(fractions.values())
    if abs(total - 1) > FRACTION_SUM_TOLERANCE:
        problems.append(
            f"config key 'splits: fractions': train + val + test must be 1, not {total:g} ({fractions})"
        )
    for name, dataset in config["datasets"].items():
        where = f"datasets: {name}"
        problems += _label_problems(dataset["labels"], where)
        classes = dataset["labels"]["classes"]
        if dataset["positive_class"] not in classes:
            problems.append(
                f"config key '{where}: positive_class': {dataset['positive_class']!r} is not one of the "
                f"dataset's classes {classes}"
            )
    for name, cohort in config.get("cohorts", {}).items():
        if cohort.get("labels"):
            problems += _label_problems(cohort["labels"], f"cohorts: {name}")
    return problems


def _label_problems(labels: Mapping[str, Any], where: str) -> list[str]:
    """Annotation classes and the unannotated class must map to classes of the labels."""
    classes = labels["classes"]
    problems = [
        f"config key '{where}: labels: annotation_classes: {region}': {target!r} is not one of {classes}"
        for region, target in labels.get("annotation_classes", {}).items()
        if target not in classes
    ]
    unannotated = labels.get("unannotated")
    if unannotated is not None and unannotated not in classes:
        problems.append(
            f"config key '{where}: labels: unannotated': {unannotated!r} is not one of the classes {classes} "
            "(null leaves unannotated tiles out)"
        )
    return problems


def _key_path(path: Any) -> str:
    return ": ".join(str(p) for p in path) or "(top level)"


def _short(error: Any) -> str:
    """A one-line message: jsonschema's, without the whole instance for nested failures."""
    if error.validator in ("oneOf", "anyOf"):
        return f"{error.instance!r} is not allowed here; see config/README.md"
    return error.message.splitlines()[0][:300]
