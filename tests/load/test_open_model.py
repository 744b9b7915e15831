"""Open model: arrivals stay on schedule when the server falls behind (no coordinated omission).

The simulator's worker pool (1 slot x 50 ms = 20 requests/s) is far slower than the storm's
demand (20 logins/s, each ~14 requests of initial load): responses take seconds, yet every user
must start its login at its scheduled time, and the latency from the schedule must include the
queueing the service time alone hides.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmload import record
from mmload.sim.launcher import running_sim
from tests.load.conftest import run_dir_from, run_mmload, write_scenario

pytestmark = pytest.mark.slow


def test_arrivals_on_schedule_while_the_server_falls_behind(tmp_path: Path) -> None:
    profile = tmp_path / "slow.yaml"
    profile.write_text("description: 20 requests/s\nworker_pool: {size: 1, service_ms: 50}\n")
    scenario = write_scenario(
        tmp_path / "storm.yaml",
        name="slow-storm",
        kind="storm",
        users=60,
        arrival_s=3,
        hold_s=3,
        actions=False,
        websocket={"enabled": False},
    )
    with running_sim(users=100, profile_file=profile, log_path=tmp_path / "sim.log") as sim:
        out = str(tmp_path / "runs")  # the SLOs fail by design here (a server that falls behind)
        res = run_mmload(
            "run", str(scenario), "--target", sim.url, "--out", out, "--no-fail-on-slo"
        )
    assert res.returncode == 0, res.stdout + res.stderr
    run_dir = run_dir_from(res.stdout)
    arr = record.read_table(run_dir, "arrivals").to_pandas()
    assert len(arr) == 60 and arr["started"].notna().all()
    assert (arr["outcome"] != "loaded").sum() > 10  # the server could not keep up
    df = record.read_table(run_dir, "requests").to_pandas()
    login = df[df["name"] == "POST /api/v4/users/login"]
    queue_ms = login["latency_ms"].quantile(0.9)
    assert queue_ms > 1000  # the queue: seconds per request
    # ...yet logins start on time: a start waits for no response, so the typical lag stays a
    # small fraction of the server's queueing. Coordinated omission would lag every start by
    # the queue itself (seconds); a busy machine only delays some starts, now and then.
    assert arr["lag_ms"].median() < queue_ms / 4, arr["lag_ms"].describe()
    # measured from the schedule, logging in also includes the queueing of the requests before
    # it (client config, license): longer than the login request's own service time
    logged = arr[arr["logged_in"].notna()].set_index("user")
    assert len(logged) >= 5
    from_schedule = (logged["logged_in"] - logged["scheduled"]).dt.total_seconds() * 1000
    service = login.set_index("user")["latency_ms"].reindex(from_schedule.index)
    assert (from_schedule >= service - 1).all()
    assert (from_schedule > 1.2 * service).mean() > 0.5
