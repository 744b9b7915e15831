"""Each load-engine benchmark, run end to end at a tiny size: the harness itself is tested.

These run the real thing (`mmload sim`, Locust, mmload's MattermostUser, wrk, `mmload run`) on
loopback, with free ports; the benchmarks stop what they start. No speed target is asserted here
(targets belong to the full-size `make bench`): we check that each benchmark measures what it says.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def run_bench(script: str, *args: str, timeout: float = 300) -> dict:
    """Run a benchmark as `make bench` does; its last stdout line must be one JSON object.
    ``timeout``: a hang guard (each takes 10-20 s idle, several times that on a busy machine)."""
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    result = json.loads(last)
    assert isinstance(result, dict)
    assert isinstance(result["met"], bool)
    return result


def test_generator_bench_compares_three_generators_on_one_core() -> None:
    result = run_bench(
        "bench_generator.py", "--rounds", "1", "--seconds", "2", "--warmup", "3", "--users", "4"
    )
    gens = result["generators"]
    assert set(gens) == {"bare", "mattermost", "wrk"}
    for name in ("bare", "mattermost", "wrk"):
        assert gens[name]["rps_median"] > 50, gens[name]
        assert gens[name]["failures"] == 0, gens[name]
    for name in ("bare", "mattermost"):
        assert 0 < gens[name]["cpu_utilisation_median"] <= 1.2
    ratios = result["ratios"]
    expected = gens["mattermost"]["rps_median"] / gens["bare"]["rps_median"]
    assert ratios["mattermost_vs_bare_rps"] == pytest.approx(expected, 0.01)
    judged = ratios["mattermost_vs_bare_rps_per_cpu_second"]
    expected = (
        gens["mattermost"]["rps_per_cpu_second_median"] / gens["bare"]["rps_per_cpu_second_median"]
    )
    assert judged == pytest.approx(expected, 0.01)
    assert result["judged_ratio"] == judged and result["met"] == (judged >= 0.85)


def test_capacity_bench_connects_pings_and_acts_for_every_user() -> None:
    users = 30
    result = run_bench(
        "bench_capacity.py",
        *("--users", str(users), "--workers", "2", "--sims", "2", "--spawn-rate", "30"),
        # the connect wait starts with the worker processes (each ~7 s to start alone, several
        # times that on a busy machine) and ends as soon as every user is connected
        *("--ping-s", "1", "--hold-s", "3", "--connect-timeout-s", "120"),
        *("--idle-min-ms", "50", "--idle-avg-ms", "150"),  # the full mix, fast
    )
    assert result["actions"] is True
    assert result["connected"] == users
    assert result["sim_websockets"] == users  # what the simulators themselves count
    assert result["pinged_users_in_hold"] == users
    assert result["pings_in_hold"] >= users * 2
    assert result["ping_failures"] == 0 and result["login_failures"] == 0
    assert result["http_users_in_hold"] == users  # every user's actions answered
    assert result["http_failures_in_hold"] == 0, result["failure_kinds"]
    assert 0.05 < result["generator_rss_peak_gib"] < 3
    assert result["time_to_connect_s"] is not None
    assert result["met"] is True


def test_schedule_bench_reads_the_run_record_per_window() -> None:
    users = 40
    result = run_bench(
        "bench_schedule.py",
        *("--users", str(users), "--arrival-s", "6", "--window-s", "2", "--hold-s", "1"),
    )
    assert result["arrivals"] == users and result["started"] == users
    windows = result["windows"]
    assert len(windows) == 3
    assert sum(w["scheduled"] for w in windows) == users
    assert sum(w["started"] for w in windows) == users
    # the slow profile was in effect: every login took at least the service time
    assert result["login_latency_ms"]["count"] >= users
    assert result["login_latency_ms"]["min"] >= 300
    worst = max(abs(w["deviation"]) for w in windows)
    assert result["worst_window_deviation"] == pytest.approx(worst)
