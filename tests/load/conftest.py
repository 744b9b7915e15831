"""Fixtures of the load-engine tests: a real `mmload sim` subprocess on free ports."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmload.sim.launcher import SimProcess, running_sim
from tests.conftest import MMLOAD

SIM_USERS = 1000


@pytest.fixture(scope="session")
def sim_endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """The simulator with the cheap default profile (``.url``, ``.metrics_url``)."""
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    with running_sim(users=SIM_USERS, log_path=log) as s:
        yield s


@pytest.fixture(scope="session")
def sim(sim_endpoints: SimProcess) -> str:
    """The simulator's base URL."""
    return sim_endpoints.url


def run_mmload(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`mmload ARGS` as a user runs it (stdout is not a TTY: plain output)."""
    return subprocess.run([MMLOAD, *args], capture_output=True, text=True, timeout=timeout)


def run_dir_from(stdout: str) -> Path:
    """The run record path printed by `mmload run`."""
    for line in stdout.splitlines():
        if line.startswith("run record: "):
            return Path(line.split(": ", 1)[1].strip())
    raise AssertionError(f"no run record path printed:\n{stdout}")


def write_scenario(path: Path, **fields: object) -> Path:
    """A scenario YAML file (JSON is valid YAML)."""
    path.write_text(json.dumps(fields), encoding="utf-8")
    return path


def wait_for_parts(out: Path, timeout: float, poll_s: float = 0.2) -> Path:
    """The run folder under ``out`` once it has flushed both a requests and an arrivals part."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        reqs = list(out.glob("*/requests/part-*.parquet"))
        if reqs and list(out.glob("*/arrivals/part-*.parquet")):
            return reqs[0].parent.parent
        time.sleep(poll_s)
    raise AssertionError(f"no flushed parts appeared in {timeout:g} s")
