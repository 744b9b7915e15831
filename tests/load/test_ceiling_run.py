"""A ceiling run against a simulator whose capacity is known reports supported users near it.

The simulator's worker pool (1 slot x 10 ms) serves at most 100 requests/s; every request waits
FIFO for the slot, so latency climbs steeply as the load approaches that. Each user runs one
action (RemoveCustomStatus: one request) with an idle time of 400-600 ms (mean 0.5 s), i.e. about
2 requests/s, so the pool saturates near 100 / 2 = 50 users. The users are the older web app's
(`client: webapp-legacy`): its login is the lighter burst and it has no 60 s polls, which this
calibration predates.

Expected result and tolerance: 50 users, accepted in [30, 60] (0.6x to 1.2x). Below: the
average-latency SLO (< 50 ms) breaks before saturation, because queueing delay grows like
rho / (1 - rho), and new users' login bursts add load on top. Above: each user waits for its
response before idling, so its rate falls as latency grows; the pool can keep the average under
50 ms for at most n / (0.5 s + 0.05 s) = 100/s, i.e. 55 users, and a 3 s interval may end before
a slowly growing queue (a few requests/s over capacity) shows, so one step more can pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmload import record
from mmload.sim.launcher import running_sim
from tests.load.conftest import run_dir_from, run_mmload, write_scenario

pytestmark = pytest.mark.slow

SATURATION_USERS = 50


def test_ceiling_finds_the_known_capacity(tmp_path: Path) -> None:
    profile = tmp_path / "pool.yaml"
    profile.write_text("description: 100 requests/s\nworker_pool: {size: 1, service_ms: 10}\n")
    scenario = write_scenario(
        tmp_path / "ceiling.yaml",
        name="ceiling-test",
        kind="ceiling",
        action_weights={"RemoveCustomStatus": 1},
        only_listed_actions=True,
        client="webapp-legacy",
        idle={"min_ms": 400, "avg_ms": 500},
        websocket={"enabled": False},
        ceiling={
            "start_users": 40,
            "step_users": 10,
            "min_step_users": 3,
            "remove_fraction": 0.1,
            "max_users": 120,
            "interval_s": 3,
            "settle_s": 1,
            "stable_intervals": 3,
            "stable_tolerance": 0.15,
            "spawn_rate": 10,
            "max_duration_s": 150,
        },
        slos={"p99_ms": 2000, "avg_ms": 50, "http_5xx_rate": None, "cpu_percent": None},
    )
    with running_sim(users=300, profile_file=profile, log_path=tmp_path / "sim.log") as sim:
        res = run_mmload(
            "run",
            str(scenario),
            "--target",
            sim.url,
            "--out",
            str(tmp_path / "runs"),
            "--label",
            "sim-pool",
            "--architecture",
            "pool-100rps",
            timeout=240,
        )
    assert res.returncode == 0, res.stdout + res.stderr
    meta = record.read_run(run_dir_from(res.stdout))
    assert (meta["label"], meta["architecture"]) == ("sim-pool", "pool-100rps")
    steps = [(i["users"], i["held"]) for i in meta["ceiling"]["intervals"]]
    assert meta["ceiling"]["converged"], steps
    assert any(not held for _, held in steps), steps  # the loop found the break
    supported = meta["supported_users"]
    assert 30 <= supported <= 60, (supported, steps)
    assert f"supported users: {supported}" in res.stdout
    # The reporter groups the run by the architecture and label it was given.
    table = run_mmload("ceiling", str(tmp_path / "runs"), "--format", "json")
    assert table.returncode == 0, table.stderr
    (row,) = json.loads(table.stdout)
    assert (row["architecture"], row["label"], row["runs"]) == ("pool-100rps", "sim-pool", 1)
    assert row["mean"] == supported
