"""Load agents spread over a deployment's proxies (issue 12, item 1): the 200,000 tier builds
four proxies, and the workers of every agent must load all of them, not the first."""

from __future__ import annotations

from types import SimpleNamespace

from mmload.load.worker import AgentEnvironment, spread_host

PROXIES = ["http://10.0.0.10", "http://10.0.0.11", "http://10.0.0.12", "http://10.0.0.13"]


def test_workers_take_proxies_round_robin() -> None:
    hosts = [spread_host(PROXIES[0], PROXIES, i) for i in range(8)]
    assert hosts == PROXIES + PROXIES


def test_other_targets_and_single_proxies_are_left_alone() -> None:
    assert spread_host("http://127.0.0.1:8065", PROXIES, 3) == "http://127.0.0.1:8065"
    assert spread_host(PROXIES[0], PROXIES[:1], 3) == PROXIES[0]
    assert spread_host(PROXIES[0], [], 3) == PROXIES[0]
    assert spread_host(None, PROXIES, 3) is None
    assert spread_host(PROXIES[0] + "/", PROXIES, 1) == PROXIES[1]


def test_the_spawn_messages_host_is_spread_by_the_worker_index() -> None:
    """Locust's worker sets ``environment.host`` from every spawn message, then gives it to
    the user classes: the environment's setter is where the spread happens."""
    env = AgentEnvironment(user_classes=[])
    env.targets = PROXIES
    env.runner = SimpleNamespace(worker_index=6)
    env.host = PROXIES[0]  # what WorkerRunner does with job["host"]
    assert env.host == PROXIES[2]
    env.runner = SimpleNamespace(worker_index=1)
    env.host = "http://mm.example.com"
    assert env.host == "http://mm.example.com"
