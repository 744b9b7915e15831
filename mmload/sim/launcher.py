"""Run `mmload sim` as a subprocess: the one launcher of `mmload demo`, the tests and benchmarks.

    from mmload.sim.launcher import running_sim

    with running_sim(users=200, profile="fast") as sim:
        requests.get(sim.url + "/api/v4/system/ping")
        sim.metrics_url  # http://127.0.0.1:PORT/metrics

The simulator binds port 0 itself and prints its URL (``mmload sim ready: URL (metrics URL)``),
so there is no race for a port. Its output goes to a log file that the launcher reads: no pipe
to drain and no reader thread, so it is safe before and after Locust's gevent monkey-patching.
The process is stopped with SIGTERM (then SIGKILL) by its pid when the block ends. Callers that
manage the process themselves (the benchmarks pin it to a CPU) start :func:`sim_command` with
its output in a file and wait with :func:`wait_until_ready`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmload.config.sim import SimSettings
from mmload.errors import RunFailed

READY = re.compile(r"mmload sim ready: (\S+) \(metrics (\S+)\)")
POLL_S = 0.05
HOST = SimSettings.model_fields["host"].default  # loopback: the simulator's own default


@dataclass
class SimProcess:
    """A running `mmload sim` subprocess, its URLs and the file holding its output."""

    url: str
    metrics_url: str | None
    process: subprocess.Popen
    log_path: Path
    kept: list[str] | None = None  # the output, once the log file is gone

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/api/v4/websocket"

    @property
    def output(self) -> list[str]:
        """Every line the simulator printed so far (stdout and stderr)."""
        return self.kept if self.kept is not None else read_lines(self.log_path)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait, SIGKILL if needed; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


PR_SET_PDEATHSIG = 1  # prctl(2): the signal a child gets when the thread that forked it ends


def _libc_prctl() -> Any:
    """libc's prctl, loaded here in the parent (a child between fork and exec only calls it:
    no import or dlopen there, which could deadlock on a lock another thread held)."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _libc_prctl()


def die_with_parent() -> None:
    """In a child before exec (``preexec_fn``): SIGTERM it when its parent thread ends, also
    by SIGKILL, so a killed caller leaves no process behind (Linux; elsewhere a no-op)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []


def mmload_executable() -> list[str]:
    """The installed console script next to this Python, else ``python -m mmload.cli``."""
    script = Path(sys.executable).with_name("mmload")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "mmload.cli"]


def sim_args(**flags: object) -> list[str]:
    """``users=200, profile="v11.9"`` → ``--users 200 --profile v11.9`` (True → bare flag)."""
    args: list[str] = []
    for key, value in flags.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    return args


def sim_command(*, host: str = HOST, args: Sequence[str] = (), **flags: object) -> list[str]:
    """``mmload sim --host HOST --port 0 --metrics-port 0 FLAGS… ARGS…`` (ports: its own)."""
    flags.setdefault("port", 0)
    if not flags.get("no_metrics"):
        flags.setdefault("metrics_port", 0)
    return [*mmload_executable(), "sim", "--host", host, *sim_args(**flags), *args]


def wait_until_ready(process: subprocess.Popen, log_path: Path, timeout: float) -> SimProcess:
    """Poll the simulator's output file until it prints its URLs.

    Raise RunFailed with its last lines if it exits first or takes longer than ``timeout``
    seconds; stopping it is then the caller's job.
    """
    deadline = time.monotonic() + timeout
    while True:
        lines = read_lines(log_path)
        found = next((m for m in map(READY.search, lines) if m), None)
        if found:
            metrics = found.group(2) if found.group(2) != "disabled" else None
            return SimProcess(found.group(1), metrics, process, log_path)
        code = process.poll()
        if code is not None or time.monotonic() > deadline:
            why = f"exited with code {code}" if code is not None else f"silent {timeout:.0f} s"
            last = " | ".join(read_lines(log_path)[-5:]) or "no output"
            raise RunFailed(f"mmload sim did not start ({why}): {last}")
        time.sleep(POLL_S)


@contextmanager
def running_sim(
    *,
    host: str = HOST,
    start_timeout: float = 60.0,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    with_parent: bool = False,
    **flags: object,
) -> Iterator[SimProcess]:
    """Start `mmload sim` (FLAGS as keywords), yield it once ready, always stop it after.

    Its output goes to ``log_path`` (overwritten), else to a temporary file removed at the end.
    It runs in its own session, so a Ctrl-C meant for the caller reaches it only through the
    caller (which stops it when the block ends). ``with_parent``: it also ends when the thread
    that started it does, even if the caller is SIGKILLed (:func:`die_with_parent`).
    """
    temporary = log_path is None
    sim: SimProcess | None = None
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="mmload-sim-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    try:
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                sim_command(host=host, **flags),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                start_new_session=True,
                preexec_fn=die_with_parent if with_parent else None,
            )
        try:
            sim = wait_until_ready(proc, log_path, start_timeout)
        except BaseException:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)
            raise
        try:
            yield sim
        finally:
            sim.stop()
    finally:
        if temporary:
            if sim is not None:
                sim.kept = read_lines(log_path)
            with contextlib.suppress(OSError):
                log_path.unlink()
