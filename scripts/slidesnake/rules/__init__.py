"""Rule code: one module per ``workflow/rules/*.smk``, one function per rule, named like the rule.

Each function reads the rule's input files, calls the library and writes the
rule's outputs (atomically); each takes keyword arguments only, so it runs the
same from its script in ``scripts/``, a test or a notebook. The library never
imports this package. :func:`run` is the one adapter every script uses.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ..errors import SlidesnakeError
from ..io import setup_logging


def run(snakemake: Any, function: Callable[..., Any], **kwargs: Any) -> Any:
    """Run one rule function with the rule's log file set up.

    A :class:`~slidesnake.errors.SlidesnakeError` (bad input: the message says what
    to fix) is logged as one line and ends the job with exit status 1; any
    other exception is logged with its traceback and raised.

    Parameters
    ----------
    snakemake : snakemake.script.Snakemake
        The object Snakemake hands to the script.
    function : callable
        The rule function.
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
    except SlidesnakeError as err:
        logger.error("rule %s: %s", snakemake.rule, err)
        sys.exit(1)
    except Exception:
        logger.exception("rule %s failed", snakemake.rule)
        raise
