"""Progress off a terminal: one plain status line every 10 s of the run's (virtual) clock.

The storm driver runs on a fake clock with the run's real :class:`RunStatus` and live
statistics; the printer sees the same snapshots the runner hands the live view.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmload.config.scenario import Scenario
from mmload.load.context import StopFlag
from mmload.load.live import PlainProgress, plain_line, render
from mmload.load.livestats import LiveStats
from mmload.load.phases import Phases, drive_storm, expected_s
from mmload.load.schedule import arrival_schedule
from mmload.load.status import RunStatus
from tests.load.fakes import FakeClock, UserCount


def _status(clock: FakeClock, scenario: Scenario) -> RunStatus:
    status = RunStatus(
        scenario.name, scenario.kind, "http://127.0.0.1:1", Path("run"), clock.now, LiveStats()
    )
    status.t0, status.schedule = clock.now + 1.0, arrival_schedule(scenario)
    status.expected_s = expected_s(scenario)
    return status


def test_a_storm_prints_one_line_every_10_s_with_its_progress() -> None:
    clock = FakeClock()
    s = Scenario(name="s", kind="storm", users=300, arrival_s=30, hold_s=15)
    status = _status(clock, s)
    lines: list[str] = []
    printer = PlainProgress(lines.append)
    live = status.live
    # three users logged in (one refused 429) at 5 s, as batches bring them in
    t = int(clock.now + 5) * 1_000_000

    def logins() -> None:
        live.add_requests(
            {
                "timestamp": [t, t, t],
                "name": ["POST /api/v4/users/login"] * 3,
                "latency_ms": [12.0, 15.0, 1.0],
                "error": [None, None, "429 limit exceeded"],
                "status": [200, 200, 429],
                "user": ["user-1", "user-2", "user-3"],
            }
        )
        live.add_arrivals(
            [
                {"outcome": "loaded", "lag_ms": 3.0, "ws_connected": 1.0},
                {"outcome": "loaded", "lag_ms": 4.0, "ws_connected": 1.0},
                {"outcome": "failed", "lag_ms": 2.0},
            ]
        )

    clock.at(clock.now + 6, logins)

    def tick() -> None:
        printer(status.snapshot(clock.time()))

    p = Phases(UserCount(clock), StopFlag(), status, clock, tick)
    drive_storm(p, s, status.t0 or 0.0, arrival_schedule(s))
    # 46 s of run (1 s lead + 30 s arrivals + 15 s hold): lines at 10, 20, 30 and 40 s
    assert len(lines) == 4, lines
    elapsed = [re.findall(r"^\[(\d+)s/46s\] (\w+)", ln)[0] for ln in lines]
    assert elapsed == [("10", "arrivals"), ("20", "arrivals"), ("30", "arrivals"), ("40", "hold")]
    first = lines[0]
    assert "arrivals due 91/300 started 3 loaded 2 failed 1" in first, first  # 0 s .. 9 s
    assert "ws 2" in first
    # the recent window (12 s to 2 s ago) holds the three logins: rate, errors and HDR p99
    assert re.search(r"rps 0\.3 errors 33\.33% p99 15 ms", first), first
    assert "rps 0.0 errors - p99 -" in lines[-1]


def test_the_live_view_shows_eta_and_websockets() -> None:
    clock = FakeClock()
    s = Scenario(name="s", kind="storm", users=10, arrival_s=60, hold_s=60)
    status = _status(clock, s)
    snap = status.snapshot(clock.now + 31.0)
    assert snap.expected_s == pytest.approx(121.0) and snap.eta_s == pytest.approx(90.0)
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(render(snap))
    text = console.export_text()
    assert "31s of 2m01s, ETA 1m30s" in text and "0 connected" in text
    assert plain_line(snap).startswith("[31s/2m01s] starting")
