"""Glue between Snakemake's ``script:`` directive and the library."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .io import setup_logging


def run(snakemake: Any, function: Callable[..., Any], **kwargs: Any) -> Any:
    """Run one stage function with the rule's log file set up; log a failure before raising it.

    Parameters
    ----------
    snakemake : snakemake.script.Snakemake
        The object Snakemake hands to the script.
    function : callable
        The stage function (see :mod:`slidesnake.stages`).
    **kwargs
        Its arguments.

    Returns
    -------
    Any
        What the function returns.
    """
    logger = setup_logging(snakemake.log[0] if snakemake.log else None)
    try:
        return function(**kwargs)
    except Exception:
        logger.exception("rule %s failed", snakemake.rule)
        raise


def slide_inputs(snakemake: Any) -> dict:
    """``label_tsvs`` and ``stores`` by slide id for a rule of a slide dataset; none for a patch dataset."""
    slides = snakemake.params.slides
    if not slides:
        return {}
    return {
        "label_tsvs": dict(zip(slides, snakemake.input.labels, strict=True)),
        "stores": dict(zip(slides, snakemake.input.stores, strict=True)),
    }
