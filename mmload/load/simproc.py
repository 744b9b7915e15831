"""Run ``mmload sim`` as a subprocess on free ports (for ``mmload demo`` and the tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from mmload.errors import RunFailed


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/api/v4/system/ping", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def simulator(
    users: int,
    *,
    profile: str | None = None,
    profile_file: str | Path | None = None,
    log_path: Path | None = None,
    timeout_s: float = 120.0,
) -> Iterator[dict[str, str]]:
    """Start the simulator; yield ``{"url", "metrics_url"}``; always stop it (by its pid)."""
    port, mport = _free_port(), _free_port()
    cmd = [
        sys.executable,
        "-m",
        "mmload.cli",
        "sim",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--metrics-port",
        str(mport),
        "--users",
        str(users),
    ]
    if profile:
        cmd += ["--profile", profile]
    if profile_file:
        cmd += ["--profile-file", str(profile_file)]
    log = log_path.open("w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout_s
        while not _ready(url):
            if proc.poll() is not None:
                raise RunFailed(f"the simulator exited with code {proc.returncode}")
            if time.time() > deadline:
                raise RunFailed(f"the simulator did not answer within {timeout_s:.0f} s")
            time.sleep(0.2)
        yield {"url": url, "metrics_url": f"http://127.0.0.1:{mport}"}
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if log_path:
            log.close()  # type: ignore[union-attr]
