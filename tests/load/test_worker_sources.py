"""`mmload worker --source-address` (a load agent with several private IPs): the agent's own
users send from its own addresses, round robin by user index, whatever the master planned.
Judged from the simulator's side, by its limiters' keys (the peer address of every request)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mmload.config.scenario import Population
from mmload.load.population import write_population
from mmload.net import free_port
from mmload.sim.launcher import SimProcess, running_sim
from tests.conftest import MMLOAD
from tests.load.conftest import write_scenario

pytestmark = pytest.mark.slow

SOURCES = ("127.0.0.6", "127.0.0.7")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """Both limiters on, wide enough never to refuse: their keys record who sent what."""
    profile = tmp_path_factory.mktemp("profile") / "limited.yaml"
    profile.write_text(
        "extends: fast\n"
        "login_rate_limit: {per_sec: 1000, burst: 1000}\n"
        "global_rate_limit: {per_sec: 10000, max_burst: 10000}\n"
    )
    with running_sim(users=50, profile_file=str(profile)) as s:
        yield s


def logins(sim: SimProcess) -> dict[str, int]:
    assert sim.metrics_url is not None
    url = sim.metrics_url.removesuffix("/metrics") + "/limiters"
    return requests.get(url, timeout=10).json()["login"]["allowed"]


def test_a_remote_worker_sends_from_its_own_source_addresses(
    limited: SimProcess, tmp_path: Path
) -> None:
    """A master with one remote worker (as on the coordinator) and the worker given two
    addresses (as `mmload load start` gives an agent its private IPs): 8 logins, 4 from each."""
    before = logins(limited)
    port = free_port()
    scenario = write_scenario(
        tmp_path / "s.yaml", name="agent", kind="storm", users=8, arrival_s=2, hold_s=2,
        actions=False,
    )  # fmt: skip
    population = tmp_path / "population.json"
    write_population(population, Population())
    master = subprocess.Popen(
        [MMLOAD, "run", str(scenario), "--target", limited.url, "--out", str(tmp_path),
         "--remote-workers", "1", "--master-port", str(port), "--no-fail-on-slo"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    flags = [a for s in SOURCES for a in ("--source-address", s)]
    agent = subprocess.Popen(
        [MMLOAD, "worker", "--master", "127.0.0.1", "--master-port", str(port),
         "--population", str(population), *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        out, err = master.communicate(timeout=180)
        agent.communicate(timeout=60)
    finally:
        for p in (master, agent):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert master.returncode == 0, out[-2000:] + err[-2000:]
    after = logins(limited)
    delta = {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}
    assert delta == {s: 4 for s in SOURCES}, delta


def test_a_worker_address_it_cannot_send_from_is_one_line() -> None:
    proc = subprocess.run(
        [MMLOAD, "worker", "--master", "127.0.0.1", "--source-address", "10.255.255.254"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("mmload: error: command line: --source-address: 10.255.255.254 is")
