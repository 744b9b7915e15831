"""A run's lifecycle in one process: Locust's real LocalRunner and MattermostUser, a virtual
clock for the phases, no target traffic (the run stops before the first scheduled login).

Stopping must stop the users, flush what they recorded, close Locust's CSVs, leave exactly one
arrival row per scheduled user (``pending`` for those who never came) and finish run.json with
the reason — as a Ctrl-C during a storm does.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path

import pandas  # noqa: F401  (imported at collection: the run's summary reads the record with it)
import pytest

from mmload import record
from mmload.config.scenario import RunOptions, Scenario
from mmload.load.schedule import arrival_schedule
from mmload.load.status import Snapshot
from tests.load.fakes import FakeClock, import_locust_unpatched

import_locust_unpatched()

from mmload.load.runner import ScenarioRun  # noqa: E402  (imports Locust)
from mmload.load.user import LoginFailed, MattermostUser  # noqa: E402

USERS = 200  # Locust spawns the first 50 (one second's worth at 50/s) at once


class OfflineUser(MattermostUser):
    """The real user, whose login never reaches the network (nothing listens in this test)."""

    def login(self, arrival) -> None:
        raise LoginFailed("offline")


@pytest.fixture(scope="module", autouse=True)
def _warm_up_locust_stop() -> None:
    """Locust's ``Runner.stop`` logs its caller with ``inspect.stack()``, which reads the source
    of every frame on the stack once per process (about 0.5 s under pytest): pay that once here,
    not inside the first test."""
    inspect.stack()


def _storm(**extra: object) -> Scenario:
    fields: dict = {
        "name": "lifecycle",
        "kind": "storm",
        "users": USERS,
        "arrival_s": 10**6,  # virtual seconds: the slots lie far beyond the test
        "hold_s": 10,
        "actions": False,
        "websocket": {"enabled": False},
    }
    fields.update(extra)
    return Scenario(**fields)


def _run(tmp_path: Path, scenario: Scenario, stop_when, **opts: object) -> tuple[ScenarioRun, dict]:
    clock = FakeClock(start=time.time() + 3600)  # every slot an hour ahead of real time
    snapshots: list[Snapshot] = []
    run: ScenarioRun

    def tick(snap: Snapshot) -> None:
        snapshots.append(snap)
        if stop_when(snap):
            run.stop.set("test stop")

    run = ScenarioRun(
        scenario,
        RunOptions(target="http://127.0.0.1:9", out=str(tmp_path), **opts),
        on_tick=tick,
        clock=clock,
        user_classes=[OfflineUser],
        probe=lambda target: "11.0.0 (test)",
    )
    result = run.execute()
    return run, {"result": result, "snapshots": snapshots, "clock": clock}


def test_stop_during_arrivals_keeps_every_user_and_finishes_the_record(tmp_path: Path) -> None:
    run, out = _run(tmp_path, _storm(), lambda snap: snap.users_spawned >= 1)
    meta, run_dir = out["result"].meta, out["result"].run_dir
    assert meta["outcome"] == "interrupted" and meta["stop_reason"] == "test stop"
    assert record.read_run(run_dir)["outcome"] == "interrupted"
    snaps = out["snapshots"]
    assert snaps[-1].phase == "arrivals" and snaps[-1].arrivals is not None
    assert snaps[-1].arrivals.total == USERS and snaps[-1].arrivals.due <= 1
    # Locust's runner stopped and quit; the users it had spawned are gone
    runner = run.role.runner
    assert runner.state == "stopped" and runner.user_count == 0 and not runner.user_greenlets
    # one row per scheduled user: those killed while waiting for their slot recorded themselves
    # (worker "local"), the ones never spawned were filled in by the runner (no worker)
    arr = record.read_table(run_dir, record.ARRIVALS).to_pandas()
    assert sorted(arr["user"]) == sorted(f"user-{i}" for i in range(1, USERS + 1))
    assert (arr["outcome"] == "pending").all() and arr["started"].isna().all()
    assert (arr["worker"] == "local").sum() >= 1 and arr["worker"].isna().sum() >= 1
    # their scheduled times are the plan's schedule from the run's t0
    schedule = arrival_schedule(run.scenario)
    expected = sorted(run.t0 + schedule.offset(g) for g in range(USERS))
    got = sorted(ts.timestamp() for ts in arr["scheduled"])
    assert got == pytest.approx(expected, abs=1e-6)
    assert meta["totals"]["arrivals"]["pending"] == USERS
    # compacted, and Locust's CSVs were written in full at the end
    assert (run_dir / "arrivals.parquet").exists() and not (run_dir / "arrivals").exists()
    header = (run_dir / "locust_stats.csv").read_text().splitlines()
    assert header[0].startswith("Type,Name,Request Count") and header[-1].split(",")[1] == (
        "Aggregated"
    )
    for name in ("locust_failures.csv", "locust_exceptions.csv", "locust_stats_history.csv"):
        assert (run_dir / name).exists(), name


def test_stop_before_anything_spawned_still_records_the_schedule(tmp_path: Path) -> None:
    _, out = _run(tmp_path, _storm(), lambda snap: True)
    arr = record.read_table(out["result"].run_dir, record.ARRIVALS).to_pandas()
    assert len(arr) == USERS and (arr["outcome"] == "pending").all()
    assert out["clock"].elapsed <= 0.5  # stopped at the first tick
    assert out["result"].meta["workers_reported"] == ["local", "master"]


def test_ceiling_stopped_while_ramping_reports_no_supported_users(tmp_path: Path) -> None:
    scenario = _storm(kind="ceiling", ceiling={"start_users": 2, "spawn_rate": 1000})
    _, out = _run(tmp_path, scenario, lambda snap: snap.users_spawned >= 2)
    meta = out["result"].meta
    assert meta["outcome"] == "interrupted" and meta["supported_users"] is None
    assert meta["ceiling"] == {"converged": False, "capped": True, "intervals": []}
    snap = out["snapshots"][-1]
    assert snap.phase == "ceiling" and snap.arrivals is None
    assert snap.ceiling is not None and snap.ceiling.target_users == 2
    # no schedule in a ceiling run: nobody is filled in as pending (users that spawned tried
    # to log in at once, and failed offline)
    arr = record.read_table(out["result"].run_dir, record.ARRIVALS).to_pandas()
    assert (arr["outcome"] == "failed").all() and arr["scheduled"].isna().all()


def _pending_record_of_everyone(out: dict) -> None:
    """Interrupted with the test's reason, and one pending arrival row per scheduled user."""
    meta, run_dir = out["result"].meta, out["result"].run_dir
    assert meta["outcome"] == "interrupted" and meta["stop_reason"] == "test stop"
    assert record.read_run(run_dir)["outcome"] == "interrupted"
    arr = record.read_table(run_dir, record.ARRIVALS).to_pandas()
    assert sorted(arr["user"]) == sorted(f"user-{i}" for i in range(1, USERS + 1))
    assert (arr["outcome"] == "pending").all()
    assert meta["totals"]["arrivals"]["pending"] == USERS


@pytest.mark.parametrize(
    ("kind", "phase", "extra"),
    [
        ("herd", "settle", {}),
        ("herd", "herd", {}),
        ("herd", "hold", {"herd": {"settle_s": 1, "outage_s": 0}}),
        ("steady", "hold", {}),
    ],
)
def test_stop_in_a_later_phase_stops_there_and_keeps_the_record(
    tmp_path: Path, kind: str, phase: str, extra: dict
) -> None:
    """Ctrl-C after the arrivals (the herd's settle, outage or hold; steady's hold): the driver
    returns within one poll, skips the phases after it, and the record is finished."""
    scenario = _storm(kind=kind, arrival_s=2, hold_s=10**6, **extra)
    run, out = _run(tmp_path, scenario, lambda snap: snap.phase == phase)
    phases = [s.phase for s in out["snapshots"]]
    assert phases[-1] == phase and phases.count(phase) == 1  # stopped at its first tick
    later = {"settle": {"herd", "hold"}, "herd": {"hold"}, "hold": set()}[phase]
    assert not later & set(phases)
    assert out["clock"].elapsed < 10**5  # far from the hold's end: the stop ended the run
    runner = run.role.runner
    assert runner.state == "stopped" and runner.user_count == 0 and not runner.user_greenlets
    _pending_record_of_everyone(out)
