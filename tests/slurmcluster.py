"""A real single-node SLURM cluster for the tests: munged, slurmctld and slurmd on this machine.

``single_node_cluster(folder)`` installs ``slurm-wlm`` and ``munge`` from Debian packages when they
are missing, writes ``slurm.conf`` (and ``gres.conf``: one GPU on ``/dev/null``, enough for SLURM to
schedule and account ``--gpus`` requests) in ``folder``, links them from ``/etc/slurm`` (slurmstepd
reads that path only), starts the daemons and stops each one it started, by PID. It needs root.
No accounting daemon: ``sacct`` fails as on a cluster without slurmdbd.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

ETC = Path("/etc/slurm")
MUNGE_RUN = Path("/run/munge")
CPUS = 2
MEMORY_MB = 20000
CONF = """\
ClusterName=slidesnake-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=10
GresTypes=gpu
NodeName=localhost CPUs={cpus} RealMemory={memory} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def run(*command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """A command with a hard time limit (``timeout -k``: nothing here can hang a test run)."""
    return subprocess.run(
        ["timeout", "-k", "5", str(timeout), *command], capture_output=True, text=True, check=False
    )


def install() -> None:
    """Install slurm-wlm and munge from Debian packages, when slurmctld is missing."""
    if shutil.which("slurmctld") and shutil.which("munged"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "slurm-wlm", "munge"]):
        done = subprocess.run(
            ["timeout", "-k", "10", "600", *command], capture_output=True, text=True, env=env, check=False
        )
        if done.returncode != 0:
            msg = f"{' '.join(command)} failed: {done.stderr[-2000:]}"
            raise RuntimeError(msg)


def _wait(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            msg = f"SLURM test cluster: {what} not ready after {timeout} s"
            raise RuntimeError(msg)
        time.sleep(0.5)


def _pid(path: Path) -> int | None:
    with contextlib.suppress(FileNotFoundError, ValueError):
        return int(path.read_text().split()[0])
    return None


def _stop(pid: int | None) -> None:
    """Stop one daemon this module started: SIGTERM, then SIGKILL after 10 s."""
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)


def _link(source: Path, link: Path) -> Path | None:
    """Point ``link`` at ``source``, keeping what was there (returned, to put back)."""
    kept = None
    if link.exists() or link.is_symlink():
        kept = link.with_name(f"{link.name}.before-slidesnake-test")
        link.rename(kept)
    link.symlink_to(source)
    return kept


@contextlib.contextmanager
def single_node_cluster(folder: Path) -> Iterator[Path]:
    """A running single-node SLURM cluster configured in ``folder`` (yielded), stopped afterwards."""
    install()
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool"):
        (folder / sub).mkdir(exist_ok=True)
    (folder / "slurm.conf").write_text(CONF.format(folder=folder, cpus=CPUS, memory=MEMORY_MB))
    (folder / "gres.conf").write_text("NodeName=localhost Name=gpu Count=1 File=/dev/null\n")
    ETC.mkdir(parents=True, exist_ok=True)
    started: list[int | None] = []
    kept = {name: _link(folder / name, ETC / name) for name in ("slurm.conf", "gres.conf")}
    try:
        MUNGE_RUN.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_RUN, "munge", "munge")
        if run("munge", "-n", timeout=10).returncode != 0:  # no munged yet: start ours
            pid_file = MUNGE_RUN / "munged.slidesnake-test.pid"  # where munged may write
            done = run("runuser", "-u", "munge", "--", "munged", f"--pid-file={pid_file}", timeout=20)
            if done.returncode != 0:
                msg = f"munged did not start: {done.stderr}"
                raise RuntimeError(msg)
            _wait(pid_file.exists, "munged")
            started.append(_pid(pid_file))
        for daemon, pid_file in (("slurmctld", "slurmctld.pid"), ("slurmd", "slurmd.pid")):
            args = [daemon] if daemon == "slurmctld" else [daemon, "-N", "localhost"]
            done = run(*args, timeout=30)
            if done.returncode != 0:
                msg = f"{daemon} did not start: {done.stderr}"
                raise RuntimeError(msg)
            _wait((folder / pid_file).exists, daemon)
            started.append(_pid(folder / pid_file))
        _wait(lambda: "idle" in run("sinfo", "-h", "-o", "%t", timeout=10).stdout, "the node")
        yield folder
    finally:
        run("scancel", "--user=root", timeout=10)
        for pid in reversed(started):
            _stop(pid)
        for name, before in kept.items():
            (ETC / name).unlink(missing_ok=True)
            if before is not None:
                before.rename(ETC / name)
