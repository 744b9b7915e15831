"""A storm that protects its target, against the real simulator.

The abort test starts its own simulator (in a thread of this process) whose worker pool is
healthy (4 slots x 5 ms) until the test degrades it, then holds every slot 1 s (queue 4, then
503 at once): a server that breaks mid-run. The test degrades it once the run's record holds
HEALTHY_REQUESTS requests over HEALTHY_S seconds, whenever that is: a fixed time after the
simulator's start would race the run's own start (~4 s idle, several times that while CI runs
three test modules at once). A real `mmload run` storm with the rule `error_rate above 0.2 for
5 s` must stop within the rule's window (``window_s + for_s``: the requests its decision rests
on) plus 5 s of the first failed request, both read from the record itself (requests.parquet
and run.json), not from wall-clock sleeps; never before ``for_s`` has passed; exit 1 with one
line naming the rule; no request sent after the abort; the arrivals not yet due ``pending``; and
`mmload report` reads the record. Measured on this machine: 12 s after the first failure.

The cap test runs a 30-user storm with --max-users 4 --max-rps 40 against the shared sim: 4
users arrive and send requests, no fifth, and the request rate stays under the cap.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from mmload import record
from mmload.config.sim import NAMED_PROFILES, PopulationSpec, SimSettings, WorkerPool
from mmload.sim.server import SimHandle, start_in_thread
from tests.conftest import MMLOAD
from tests.load.conftest import run_dir_from, run_mmload, wait_for_parts, write_scenario

pytestmark = pytest.mark.slow

FOR_S, WINDOW_S, ALLOWANCE_S = 5.0, 10, 5.0
HEALTHY_REQUESTS, HEALTHY_S = 60, 4.0  # recorded before the test degrades the simulator
NEVER_S = 86_400.0  # the pool's own degrade time: the test degrades it instead


def _storm(tmp_path: Path) -> Path:
    return write_scenario(
        tmp_path / "storm.yaml",
        name="abort-storm",
        kind="storm",
        users=40,
        arrival_s=40,
        hold_s=30,
        actions=True,
        idle={"min_ms": 200, "avg_ms": 500},
        slos={"p99_ms": None, "avg_ms": None},
        abort=[
            {"metric": "login_p99_ms", "above": 3_000_000, "for_s": 1},  # never: p99 in ms
            {"metric": "error_rate", "above": 0.2, "for_s": FOR_S},
        ],
    )


@pytest.fixture
def failing_sim() -> Iterator[SimHandle]:
    """4 slots x 5 ms, queue 4; once degraded (:func:`_degrade`) every request holds its slot
    1 s."""
    pool = WorkerPool(
        size=4, service_ms=5, queue_max=4, degrade_after_s=NEVER_S, degraded_service_ms=1000
    )
    profile = NAMED_PROFILES["fast"].model_copy(update={"worker_pool": pool})
    settings = SimSettings(
        port=0, metrics_port=0, population=PopulationSpec(users=100), profile=profile
    )
    handle = start_in_thread(settings)
    try:
        yield handle
    finally:
        handle.stop()


def _degrade(sim: SimHandle) -> None:
    """From now on every request holds its slot the degraded time (the pool's own switch, on
    the simulator's loop)."""

    def now() -> None:
        pool = sim.sim.pool
        assert pool is not None and pool.degrade_at is not None
        pool.degrade_at = pool.clock()

    sim.call(now)


def _healthy_so_far(out: Path) -> bool:
    """The flushed requests: at least HEALTHY_REQUESTS, over HEALTHY_S seconds."""
    parts = list(out.glob("*/requests/part-*.parquet"))
    if not parts:
        return False
    ts = pd.concat(pd.read_parquet(p, columns=["timestamp"]) for p in parts)["timestamp"]
    return len(ts) >= HEALTHY_REQUESTS and (ts.max() - ts.min()).total_seconds() >= HEALTHY_S


def test_an_abort_rule_stops_a_storm_whose_target_starts_failing(
    failing_sim: SimHandle, tmp_path: Path
) -> None:
    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [MMLOAD, "run", str(_storm(tmp_path)), "--target", failing_sim.url, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_parts(out, timeout=90.0)  # the run's start: returns once it measures
        deadline = time.time() + 60
        while not _healthy_so_far(out) and time.time() < deadline:
            time.sleep(0.2)
        assert _healthy_so_far(out), "the run did not get going against the healthy server"
        _degrade(failing_sim)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 1, stdout + stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "mmload: error: aborted by the rule error_rate above 0.2 for 5 s: error_rate "
    ), stderr
    run_dir = run_dir_from(stdout)
    meta = record.read_run(run_dir)
    assert meta["outcome"] == "aborted" and meta["error"] is None
    abort = meta["abort"]
    assert abort["rule"] == "error_rate above 0.2 for 5 s" and abort["value"] > 0.2
    assert (abort["threshold"], abort["for_s"], abort["window_s"]) == (0.2, FOR_S, WINDOW_S)
    at, since = pd.Timestamp(abort["at"]), pd.Timestamp(abort["since"])

    requests = record.read_table(run_dir, record.REQUESTS).to_pandas()
    failed = requests[requests["error"].notna()]
    first_request, first_failure = requests["timestamp"].min(), failed["timestamp"].min()
    healthy = requests[requests["timestamp"] < first_failure]
    assert (first_failure - first_request).total_seconds() >= 3, "the target failed from the start"
    assert len(healthy) >= 50 and healthy["error"].isna().all()
    took = (at - first_failure).total_seconds()
    assert FOR_S <= took <= WINDOW_S + FOR_S + ALLOWANCE_S, f"fired {took:.1f} s after"
    assert (at - since).total_seconds() == pytest.approx(FOR_S, abs=1.0)
    # arrivals stop at once, the users stop: nothing is sent after the abort (1 s: in flight)
    assert (requests["timestamp"].max() - at).total_seconds() <= 1.0
    arrivals = record.read_table(run_dir, record.ARRIVALS).to_pandas()
    assert len(arrivals) == 40 and (arrivals["outcome"] == "pending").sum() >= 5
    assert (arrivals["started"].dropna() <= at + pd.Timedelta(seconds=1)).all()

    verdict = record.run_verdict(record.read_meta(run_dir))
    assert verdict.status == "FAIL" and verdict.reasons[-1].startswith(
        "aborted by the rule error_rate above 0.2 for 5 s"
    )
    report = run_mmload("report", str(run_dir), "--format", "md,json", "--out", str(tmp_path / "r"))
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "aborted by the rule error_rate above 0.2 for 5 s" in text
    gate = run_mmload("report", str(run_dir), "--fail-on-slo", "--format", "json")
    assert gate.returncode == 1, gate.stderr  # an aborted run is never a PASS


def test_max_users_and_max_rps_cap_a_storm(sim: str, tmp_path: Path) -> None:
    f = write_scenario(
        tmp_path / "capped.yaml",
        name="capped",
        kind="storm",
        users=30,
        arrival_s=3,
        hold_s=4,
        actions=True,
        idle={"min_ms": 50, "avg_ms": 100},
        slos={"p99_ms": None, "avg_ms": None},
    )
    out = tmp_path / "runs"
    res = run_mmload(
        "run", str(f), "--target", sim, "--out", str(out), "--max-users", "4", "--max-rps", "40"
    )
    assert res.returncode == 0, res.stdout + res.stderr
    run_dir = run_dir_from(res.stdout)
    meta = record.read_run(run_dir)
    params = meta["parameters"]
    assert (params["users"], params["max_users"], params["rate_cap"]) == (4, 4, 40.0)
    arrivals = record.read_table(run_dir, record.ARRIVALS).to_pandas()
    assert len(arrivals) == 4 and (arrivals["outcome"] == "loaded").all()
    requests = record.read_table(run_dir, record.REQUESTS).to_pandas()
    assert requests["user"].dropna().nunique() == 4
    http = requests[~requests["name"].str.startswith("WS")]
    span = (http["timestamp"].max() - http["timestamp"].min()).total_seconds()
    assert len(http) <= 40 * (span + 1) * 1.05, f"{len(http)} requests in {span:.1f} s"


def test_bad_caps_are_one_line_naming_the_flag(sim: str, tmp_path: Path) -> None:
    f = write_scenario(tmp_path / "s.yaml", name="s", kind="storm", users=2)
    for flag, value in (("--max-users", "0"), ("--max-rps", "-1")):
        res = run_mmload("run", str(f), "--target", sim, flag, value)
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
        assert (flag if flag == "--max-users" else "--rate-cap") in res.stderr
