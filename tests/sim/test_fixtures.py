"""The helpers other stages' tests use: the in-process and subprocess simulator fixtures."""

from __future__ import annotations

import pytest
import requests

from mmload.config.sim import SimSettings
from mmload.errors import RunFailed, UserError
from mmload.sim.launcher import SimProcess, running_sim, sim_args
from mmload.sim.server import SimHandle, start_in_thread


def test_sim_thread_fixture(sim_thread: SimHandle) -> None:
    assert requests.get(sim_thread.url + "/api/v4/system/ping", timeout=5).status_code == 200
    assert sim_thread.call(lambda: len(sim_thread.sim.pop.users)) == 60


def test_sim_process_fixture(sim_process: SimProcess) -> None:
    assert requests.get(sim_process.url + "/api/v4/system/ping", timeout=5).status_code == 200
    assert sim_process.ws_url == sim_process.url.replace("http", "ws") + "/api/v4/websocket"
    assert sim_process.process.poll() is None


def test_start_in_thread_reports_a_busy_port() -> None:
    with start_in_thread() as first:
        port = int(first.url.rsplit(":", 1)[1])
        with pytest.raises(UserError, match="--port: cannot listen"):
            start_in_thread(SimSettings(port=port, metrics_port=None))


def test_running_sim_reports_a_failed_start() -> None:
    with pytest.raises(RunFailed, match="mmload sim did not start"), running_sim(users=0):
        pass


def test_sim_args() -> None:
    assert sim_args(users=5, profile="v11.9", no_metrics=True, seed=None) == [
        "--users",
        "5",
        "--profile",
        "v11.9",
        "--no-metrics",
    ]
