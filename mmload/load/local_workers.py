"""Local worker processes: ``mmload worker`` subprocesses a master starts on its own machine.

Spawned in their own session with a log each in the run record (``worker-K.log``), watched while
the run goes on (one that exits fails the run), and stopped with the run (waited for, then killed
by process group). :func:`wait_ready` waits for the master's workers, local or remote.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

from mmload.errors import RunFailed
from mmload.load.clock import WALL, Clock
from mmload.load.context import StopFlag

READY_POLL_S = 0.2


def worker_command(
    master_host: str, master_port: int, locustfile: str | None, population: Path | None = None
) -> list[str]:
    """The command line of one local worker (it quits when its parent, the master, is gone)."""
    cmd = [sys.executable, "-m", "mmload.cli", "worker", "--with-parent"]
    cmd += ["--master", master_host, "--master-port", str(master_port)]
    if locustfile:
        cmd += ["--locustfile", locustfile]
    if population:
        cmd += ["--population", str(population)]
    return cmd


class LocalWorkers:
    """``count`` worker processes of one run."""

    def __init__(self, count: int, locustfile: str | None = None):
        self.count = count
        self.locustfile = locustfile
        self.procs: list[subprocess.Popen] = []
        self._logs: list[IO[str]] = []

    def spawn(
        self, master_host: str, master_port: int, log_dir: Path, population: Path | None = None
    ) -> None:
        """Start the processes (logs in ``log_dir``); they connect to the master at
        ``master_host:master_port`` and read the ``population`` file when the plan comes."""
        cmd = worker_command(master_host, master_port, self.locustfile, population)
        for i in range(self.count):
            logf = (log_dir / f"worker-{i}.log").open("w")
            self._logs.append(logf)
            self.procs.append(
                subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
            )

    def check(self) -> None:
        """Fail the run if a worker process has exited."""
        for p in self.procs:
            if p.poll() is not None:
                raise RunFailed(f"a worker process exited (code {p.returncode}); see its log")

    def all_exited(self) -> bool:
        """True when every started process has exited (and at least one was started)."""
        return bool(self.procs) and all(p.poll() is not None for p in self.procs)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Wait for the processes to quit (the master told them to); kill what is left."""
        for p in self.procs:
            try:
                p.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        for f in self._logs:
            f.close()
        self._logs = []


def wait_ready(
    ready: Callable[[], int],
    expected: int,
    timeout_s: float,
    stop: StopFlag,
    check: Callable[[], None] = lambda: None,
    clock: Clock = WALL,
) -> bool:
    """Wait until ``ready()`` reaches ``expected`` workers; False when the run stops first.

    Raises RunFailed after ``timeout_s``, or when ``check`` finds a local worker gone.
    """
    deadline = clock.time() + timeout_s
    while ready() < expected:
        if stop:
            return False
        if clock.time() > deadline:
            raise RunFailed(f"only {ready()} of {expected} workers connected")
        check()
        clock.sleep(READY_POLL_S)
    return True
