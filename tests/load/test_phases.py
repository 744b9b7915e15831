"""The phase drivers and the ceiling loop on virtual time: what they set, when, and how they stop.

No Locust, no process, no wall clock: the drivers run against a fake clock and a fake
``set_users``, exactly the seams a run gives them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmload.config.scenario import Ceiling, Scenario
from mmload.errors import RunFailed
from mmload.load.ceiling import LOGIN_GRACE_S, CeilingController, CeilingLoop
from mmload.load.context import StopFlag
from mmload.load.livestats import LiveStats
from mmload.load.phases import (
    DRIVERS,
    HERD_MARGIN_S,
    HERD_SAMPLE,
    Phases,
    drive_herd,
    drive_storm,
    spawn_rate,
)
from mmload.load.schedule import Backoff, arrival_schedule, herd_offsets
from mmload.load.status import RunStatus
from tests.load.fakes import FakeClock, UserCount


class Timeline:
    """Which phase the run was in at each moment the driver waited (from its ticks)."""

    def __init__(self, clock: FakeClock, status: RunStatus):
        self.clock, self.status = clock, status
        self.entered: list[tuple[str, float]] = []

    def __call__(self) -> None:
        if not self.entered or self.entered[-1][0] != self.status.phase:
            self.entered.append((self.status.phase, self.clock.elapsed))


def _phases(clock: FakeClock, kind: str = "storm") -> tuple[Phases, UserCount, Timeline]:
    status = RunStatus("t", kind, "http://127.0.0.1:1", Path("run"), clock.now, LiveStats())
    users = UserCount(clock)
    timeline = Timeline(clock, status)
    return Phases(users, StopFlag(), status, clock, timeline), users, timeline


def test_storm_starts_everyone_then_holds_after_the_last_arrival() -> None:
    clock = FakeClock()
    p, users, timeline = _phases(clock)
    s = Scenario(name="s", kind="storm", users=1500, arrival_s=90, hold_s=30)
    t0 = clock.now + 1.0
    drive_storm(p, s, t0, arrival_schedule(s))
    # every user is started at once (each sleeps until its slot), 4x faster than they arrive
    assert (
        users.calls == [(0.0, 1500, spawn_rate(1500, 90))] and spawn_rate(1500, 90) == 4 * 1500 / 90
    )
    assert timeline.entered == [("arrivals", 0.0), ("hold", pytest.approx(91.0))]
    assert clock.elapsed == pytest.approx(1 + 90 + 30)
    assert max(clock.sleeps) <= p.poll_s  # the live view and the worker watch run every 0.5 s
    assert DRIVERS["steady"] is not None and DRIVERS["storm"] is drive_storm


def test_small_storms_still_spawn_at_50_per_second() -> None:
    assert spawn_rate(10, 60) == 50.0 and spawn_rate(10, 0) == 50.0


def test_herd_waits_for_the_outage_and_the_last_reconnect() -> None:
    clock = FakeClock()
    p, users, timeline = _phases(clock, "herd")
    s = Scenario(
        name="h", kind="herd", users=60, arrival_s=2, hold_s=1, herd={"settle_s": 1, "outage_s": 4}
    )
    drive_herd(p, s, clock.now, arrival_schedule(s))
    last = max(herd_offsets(HERD_SAMPLE, 4.0, Backoff.from_spec(s.websocket)))
    assert 4.0 <= last < 4.0 + 3 + 2  # the first retry at or after the outage's end
    drop = 2 + 1
    assert [name for name, _ in timeline.entered] == ["arrivals", "settle", "herd", "hold"]
    starts = dict(timeline.entered)
    assert starts["settle"] == pytest.approx(2) and starts["herd"] == pytest.approx(drop)
    assert starts["hold"] == pytest.approx(drop + last + HERD_MARGIN_S)
    assert clock.elapsed == pytest.approx(drop + last + HERD_MARGIN_S + 1)
    assert len(users.calls) == 1


def test_stop_ends_the_run_within_one_poll_and_skips_the_later_phases() -> None:
    clock = FakeClock()
    p, _users, timeline = _phases(clock)
    s = Scenario(name="s", kind="storm", users=100, arrival_s=60, hold_s=60)
    clock.at(clock.now + 10.2, lambda: p.stop.set("Ctrl-C"))
    drive_storm(p, s, clock.now + 1, arrival_schedule(s))
    assert p.stop.reason == "Ctrl-C" and p.stop.outcome == "interrupted"
    assert 10.2 <= clock.elapsed <= 10.2 + p.poll_s
    assert [name for name, _ in timeline.entered] == ["arrivals"]


def test_a_failing_watch_fails_the_phase() -> None:
    clock = FakeClock()
    p, _users, _timeline = _phases(clock)
    dead = {"worker": False}
    clock.at(clock.now + 3, lambda: dead.update(worker=True))

    def watch() -> None:
        if dead["worker"]:
            raise RunFailed("a worker process exited (code -9); see its log")

    p.tick = watch
    s = Scenario(name="s", kind="storm", users=10, arrival_s=60, hold_s=0)
    with pytest.raises(RunFailed, match="worker process exited"):
        drive_storm(p, s, clock.now, arrival_schedule(s))
    assert clock.elapsed == pytest.approx(3.0, abs=p.poll_s)


# ---- the ceiling loop ----------------------------------------------------------------------
SPEC = Ceiling(
    start_users=10,
    step_users=10,
    min_step_users=2,
    remove_fraction=0.1,
    max_users=100,
    interval_s=5,
    settle_s=1,
    stable_intervals=3,
    stable_tolerance=0.15,
    spawn_rate=10,
    max_duration_s=10_000,
)


def _capacity(users: UserCount, capacity: int, windows: list[tuple[float, float]], clock):
    """A target that holds every SLO up to ``capacity`` users."""

    def measure(t_from: float, t_to: float) -> list[dict]:
        windows.append((t_from - clock.start, t_to - clock.start))
        held = users.current <= capacity
        return [{"name": "p99_ms", "passed": held}]

    return measure


def test_ceiling_loop_converges_like_the_controller_and_measures_each_interval() -> None:
    clock = FakeClock()
    p, users, _ = _phases(clock, "ceiling")
    windows: list[tuple[float, float]] = []
    loop = CeilingLoop(
        SPEC,
        p,
        measure=_capacity(users, 35, windows, clock),
        arrived=lambda: users.current,  # every added user has logged in at once
        reported_since=lambda t: True,
    )
    loop.run()
    # the same decisions as the pure controller fed the same verdicts
    ref = CeilingController(SPEC)
    for step in loop.controller.history:
        assert step.users == ref.users
        ref.decide(step.users <= 35, [] if step.users <= 35 else ["p99_ms"])
    assert loop.controller.history[-1].done and loop.controller.broke
    assert 30 <= loop.controller.supported_users() <= 35
    # users set: the start, then every change the controller made
    counts = [c for _, c, _ in users.calls]
    assert counts[0] == 10 and all(rate == SPEC.spawn_rate for *_, rate in users.calls)
    changed = [s.next_users for s in loop.controller.history[:-1] if s.next_users != s.users]
    assert counts[1:] == changed
    # every interval is measured for interval_s, settle_s after the decision point
    assert len(windows) == len(loop.log) == len(loop.controller.history)
    for t_from, t_to in windows:
        assert t_to - t_from == pytest.approx(SPEC.interval_s)
    assert windows[0][0] == pytest.approx(SPEC.settle_s)
    summary = loop.summary()
    assert summary["ceiling"]["converged"] and not summary["ceiling"]["capped"]
    assert summary["supported_users"] == loop.controller.supported_users()
    assert p.status.ceiling is not None and p.status.ceiling.last_held is not None


def test_ceiling_waits_for_added_users_to_log_in_before_measuring() -> None:
    clock = FakeClock()
    p, users, _ = _phases(clock, "ceiling")
    logged_in = {"n": 0}
    clock.at(clock.now + 7.0, lambda: logged_in.update(n=10))  # the first 10 log in at 7 s
    windows: list[tuple[float, float]] = []
    measure = _capacity(users, 1000, windows, clock)
    loop = CeilingLoop(SPEC, p, measure, lambda: logged_in["n"], lambda t: True)
    clock.at(clock.now + 20, lambda: p.stop.set("enough"))
    loop.run()
    assert windows[0][0] == pytest.approx(7.0 + SPEC.settle_s, abs=p.poll_s)


def test_ceiling_measures_anyway_when_logins_never_finish() -> None:
    clock = FakeClock()
    p, users, _ = _phases(clock, "ceiling")
    windows: list[tuple[float, float]] = []
    loop = CeilingLoop(SPEC, p, _capacity(users, 1000, windows, clock), lambda: 0, lambda t: True)
    clock.at(clock.now + 50, lambda: p.stop.set("enough"))
    loop.run()
    ramp = SPEC.start_users / SPEC.spawn_rate
    assert windows[0][0] == pytest.approx(ramp + LOGIN_GRACE_S + SPEC.settle_s, abs=p.poll_s)


def test_ceiling_waits_for_every_process_data_of_the_interval() -> None:
    clock = FakeClock()
    p, users, _ = _phases(clock, "ceiling")
    reported: list[float] = []
    decided_at: list[float] = []

    def reported_since(t: float) -> bool:
        reported.append(t)
        return clock.elapsed >= 6.0 + 1.5  # the last batch comes 1.5 s after the interval

    def measure(t_from: float, t_to: float) -> list[dict]:
        decided_at.append(clock.elapsed)
        p.stop.set("done")
        return [{"name": "p99_ms", "passed": True}]

    CeilingLoop(SPEC, p, measure, lambda: users.current, reported_since).run()
    assert reported[0] == pytest.approx(clock.start + 6.0 + 0.2)  # the interval's end + slack
    assert decided_at == [pytest.approx(7.5, abs=0.1)]


def test_ceiling_ends_at_its_time_limit() -> None:
    clock = FakeClock()
    p, users, _ = _phases(clock, "ceiling")
    spec = SPEC.model_copy(update={"max_duration_s": 30.0, "max_users": 10_000})
    windows: list[tuple[float, float]] = []
    measure = _capacity(users, 10**6, windows, clock)
    loop = CeilingLoop(spec, p, measure, lambda: users.current, lambda t: True)
    loop.run()
    assert not loop.summary()["ceiling"]["converged"]
    assert 30.0 <= clock.elapsed <= 30.0 + spec.settle_s + spec.interval_s + 1


def test_ceiling_stops_with_an_error_when_an_slo_is_unmeasured() -> None:
    """An interval whose required SLO has no value is not counted as held: the loop stops."""
    clock = FakeClock()
    p, users, _ = _phases(clock, "ceiling")
    calls: list[int] = []

    def measure(t_from: float, t_to: float) -> list[dict]:
        calls.append(users.current)
        return [
            {"name": "p99_ms", "passed": True},
            {"name": "http_5xx_rate", "passed": None, "optional": True},  # skipped
            {"name": "cpu_percent", "passed": None, "optional": False},
        ]

    loop = CeilingLoop(SPEC, p, measure, lambda: users.current, lambda t: True)
    with pytest.raises(RunFailed, match="at 10 users could not measure cpu_percent"):
        loop.run()
    assert calls == [10] and loop.log == []  # no interval was judged
