"""Run `mmload sim` as a real subprocess on free ports, for tests and tools.

    from mmload.sim.testing import running_sim

    with running_sim(users=200, profile="fast") as sim:
        requests.get(sim.url + "/api/v4/system/ping")
        sim.metrics_url  # http://127.0.0.1:PORT/metrics

The simulator binds port 0 itself and prints its URL, so there is no race for a port. The
process is stopped with SIGTERM (then SIGKILL) by its pid when the block ends.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

READY = re.compile(r"mmload sim ready: (\S+) \(metrics (\S+)\)")


@dataclass
class SimProcess:
    """A running `mmload sim` subprocess."""

    url: str
    metrics_url: str | None
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/api/v4/websocket"

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


@contextmanager
def running_sim(
    *,
    host: str = "127.0.0.1",
    start_timeout: float = 30.0,
    env: dict[str, str] | None = None,
    **flags: object,
) -> Iterator[SimProcess]:
    """Start `mmload sim --port 0 --metrics-port 0 …`, yield it once ready, stop it after."""
    flags.setdefault("port", 0)
    flags.setdefault("metrics_port", 0)
    cmd = [*mmload_executable(), "sim", "--host", host, *sim_args(**flags)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    output: list[str] = []
    ready = threading.Event()
    found: dict[str, str] = {}

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line.rstrip("\n"))
            m = READY.search(line)
            if m and not ready.is_set():
                found["url"], found["metrics"] = m.group(1), m.group(2)
                ready.set()
        ready.set()  # EOF: the process ended

    reader = threading.Thread(target=pump, name="mmload-sim-output", daemon=True)
    reader.start()
    deadline = time.monotonic() + start_timeout
    ready.wait(max(deadline - time.monotonic(), 0))
    if "url" not in found:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        raise RuntimeError("mmload sim did not start: " + " | ".join(output[-5:]))
    metrics = found["metrics"] if found["metrics"] != "disabled" else None
    sim = SimProcess(found["url"], metrics, proc, output)
    try:
        yield sim
    finally:
        sim.stop()
        reader.join(5)
