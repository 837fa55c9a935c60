"""What a cluster run needs to know before it submits anything: GPUs per job, a status command that works.

The SLURM executor plugin asks ``sacct`` for job states by default. On a cluster without accounting
(no slurmdbd) ``sacct`` fails on every poll and the plugin retries for ever with no message; the
check here turns that into one line, at the start of the run, naming the option to add.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

from .errors import ClusterError

#: Conda envs (envs/<name>.yaml) whose rules run on a GPU.
GPU_ENVS = frozenset({"tensorflow-gpu"})
#: Seconds the ``sacct`` probe may take before the check gives up on it (and says nothing).
SACCT_TIMEOUT_S = 20


def gpus_of(dataset: Mapping[str, Any]) -> int:
    """GPUs a dataset's train and predict jobs ask for: its ``gpus`` in a GPU env, else none.

    Parameters
    ----------
    dataset : Mapping
        The dataset's validated config (keys ``env`` and ``gpus``).

    Returns
    -------
    int
        The Snakemake resource ``gpu`` (the SLURM plugin turns it into ``sbatch --gpus``).
    """
    return int(dataset["gpus"]) if dataset["env"] in GPU_ENVS else 0


def sacct_problem() -> str | None:
    """Why ``sacct`` cannot report job states here (None when it can, or cannot be asked in time)."""
    if shutil.which("sacct") is None:
        return "sacct is not installed"
    try:
        done = subprocess.run(
            ["sacct", "--noheader", "--allocations", "--format=JobID", "--starttime=now-1minute"],
            capture_output=True,
            text=True,
            timeout=SACCT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    if done.returncode == 0:
        return None
    said = (done.stderr or done.stdout).strip().splitlines()
    return f"sacct: {said[-1]}" if said else f"sacct exited with {done.returncode}"


def check_cluster(*, executor: str | None, status_command: str | None) -> None:
    """Fail at the start of a SLURM run whose job states could never be read.

    Parameters
    ----------
    executor : str or None
        Snakemake's executor plugin (``slurm`` is checked; local runs and jobs on the cluster are not).
    status_command : str or None
        The plugin's ``--slurm-status-command`` (``sacct`` or ``squeue``).

    Raises
    ------
    ClusterError
        ``sacct`` is the status command and it does not work on this cluster.
    """
    if executor != "slurm" or status_command != "sacct":
        return
    problem = sacct_problem()
    if problem:
        msg = (
            f"SLURM job states cannot be read with sacct here ({problem}): add "
            "--slurm-status-command squeue, or set 'slurm-status-command: squeue' in "
            "profiles/slurm/config.yaml (see profiles/slurm/README.md)"
        )
        raise ClusterError(msg)
