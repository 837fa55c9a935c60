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
from ..interrupts import Interrupted, raise_on_termination
from ..io import setup_logging


def run(snakemake: Any, function: Callable[..., Any], **kwargs: Any) -> Any:
    """Run one rule function with the rule's log file set up.

    A :class:`~slidesnake.errors.SlidesnakeError` (bad input: the message says what
    to fix) is logged as one line and ends the job with exit status 1; any
    other exception is logged with its traceback and raised. SIGTERM, SIGINT and
    SIGHUP raise :class:`~slidesnake.interrupts.Interrupted` in the job (held while a
    write must not be cut), so temporary outputs are removed on the way out; the job then
    exits with 128 + the signal number.

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
    raise_on_termination()
    try:
        return function(**kwargs)
    except SlidesnakeError as err:
        logger.error("rule %s: %s", snakemake.rule, err)
        sys.exit(1)
    except Interrupted as err:
        logger.error("rule %s: %s; its temporary outputs were removed", snakemake.rule, err)
        sys.exit(128 + err.signum)
    except Exception:
        logger.exception("rule %s failed", snakemake.rule)
        raise
