"""Shared fixtures: the path to ../shared and running the real `mmload` console script."""

from __future__ import annotations

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


# Modules that run playbooks against this machine itself (system users, files): one worker runs
# them one after another. Every other module is its own group, so module fixtures are shared.
THIS_MACHINE = {
    "tests/configure/test_converge.py",
    "tests/configure/test_tls.py",
    "tests/configure/test_failures.py",
    "tests/configure/test_templates.py",
    "tests/configure/test_from_provisioning.py",
    "tests/configure/test_inventory.py",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group tests for pytest-xdist's ``--dist loadgroup``: by module, this machine's in one."""
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        group = "this-machine" if module in THIS_MACHINE else module
        item.add_marker(pytest.mark.xdist_group(group))
