"""Shared fixtures: the path to ../shared and running the real `mmload` console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pghost import PostgresHost
from tests.sshhosts import SshHosts

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MMLOAD_SHARED", REPO.parent / "shared"))
MMLOAD = str(Path(sys.executable).with_name("mmload"))


def run_cli(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess[str]:
    """Run the installed `mmload` console script as a user would."""
    return subprocess.run([MMLOAD, *args], capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture
def shared() -> Path:
    """The read-only shared folder (Mattermost's spec, facts and published datasets)."""
    if not SHARED.is_dir():
        pytest.fail(f"shared folder not found at {SHARED} (set MMLOAD_SHARED)")
    return SHARED


@pytest.fixture
def ssh_hosts(tmp_path: Path) -> Iterator[SshHosts]:
    """Real sshd's on loopback addresses (start them with ``ssh_hosts.start(NAME, ...)``)."""
    hosts = SshHosts(tmp_path / "sshd")
    try:
        yield hosts
    finally:
        hosts.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresHost]:
    """A real PostgreSQL on 127.0.0.1 (Debian's binaries, a temp data dir, a free port, run as
    an unprivileged user), shared by the session's tests and stopped by its pid at the end.
    ``postgres.dsn`` is a ``postgresql://`` URL for its test database (TLS required)."""
    host = PostgresHost(
        "127.0.0.1", user="mmtest", password="pw-" + os.urandom(6).hex(), dbname="mmtest"
    )
    host.start()
    try:
        yield host
    finally:
        host.stop()


_MODULE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Sum setup, call and teardown time per module (tests/parallel.py plans shards from it)."""
    module = report.nodeid.split("::", 1)[0]
    _MODULE_SECONDS[module] = _MODULE_SECONDS.get(module, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the per-module timings where tests/parallel.py asked for them."""
    out = os.environ.get("MMLOAD_TEST_TIMINGS")
    if out:
        rounded = {m: round(s, 1) for m, s in _MODULE_SECONDS.items()}
        Path(out).write_text(json.dumps(rounded))
