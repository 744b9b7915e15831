"""A real ``replay`` storm: the checked-in 09:00 restart curve, real Locust against ``mmload sim``.

The curve is 15 minutes of per-10 s login counts (15,000 logins: a sharp rise, a minute at the
peak, a long tail). Scaled to 0.1 in count it is 1,500 users; a run of its full 15 minutes is too
long for CI, so the run also scales time by 0.1: the same shape in 90 s, every 10 s window of
the run holding 100 s of the curve (60 to 467 arrivals a window, the peak at ~54 logins/s), on
two local worker processes (one process at the peak shares a core with the recorder and the
simulator: its starts lagged by up to ~1.6 % of a window).
Judged from the record alone: run.json's requested curve, and the arrivals table's scheduled
and started times counted in the same 10 s windows from the schedule's origin (``t0``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mmload import record
from mmload.config.scenario import SCENARIO_DIR
from mmload.sim.launcher import running_sim
from tests.load.conftest import run_dir_from, run_mmload

pytestmark = pytest.mark.slow

TOLERANCE = 0.02  # started arrivals per window, relative to the requested ones


def per_window(times: pd.Series, curve: record.ArrivalCurve) -> list[int]:
    """How many of ``times`` fall in each of the curve's windows (from its t0); a time before
    the first or after the last window is in none (a late start counts against its window)."""
    t0 = pd.Timestamp(curve.t0)
    counts = ((times - t0).dt.total_seconds() // curve.window_s).astype(int).value_counts()
    return [int(counts.get(i, 0)) for i in range(len(curve.requested))]


def test_replayed_curve_starts_within_2_percent_of_every_window(tmp_path: Path) -> None:
    scenario = tmp_path / "replay.yaml"
    (tmp_path / "restart-0900.csv").write_bytes(
        (SCENARIO_DIR / "curves" / "restart-0900.csv").read_bytes()
    )
    spec = {
        "name": "replay-restart",
        "kind": "storm",
        "arrivals": {
            "curve": "replay",
            "csv": "restart-0900.csv",
            "scale": 0.1,
            "time_scale": 0.1,
        },
        "hold_s": 3,
        "actions": False,
        "websocket": {"enabled": False},
    }
    scenario.write_text(json.dumps(spec))
    with running_sim(users=1600, log_path=tmp_path / "sim.log") as sim:
        res = run_mmload(
            "run",
            str(scenario),
            "--target",
            sim.url,
            "--out",
            str(tmp_path / "runs"),
            "--no-fail-on-slo",
            "--workers",
            "2",
            timeout=600,
        )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    run_dir = run_dir_from(res.stdout)
    meta = record.RunMeta.model_validate(record.read_run(run_dir))
    assert meta.outcome == "completed" and meta.parameters["users"] == 1500
    curve = meta.arrival_curve
    assert curve is not None and curve.curve == "replay" and curve.window_s == 10
    raw = [int(r.split(",")[1]) for r in (tmp_path / "restart-0900.csv").read_text().split()[-90:]]
    # the requested curve is the CSV's, scaled: 100 s of it (ten 10 s counts) per window, x 0.1
    assert curve.requested == [sum(raw[i : i + 10]) / 10 for i in range(0, 90, 10)]
    assert max(curve.requested) > 7 * min(curve.requested)  # far from uniform

    arr = record.read_table(run_dir, "arrivals").to_pandas()
    assert len(arr) == 1500 and arr["started"].notna().all(), arr["outcome"].value_counts()
    scheduled = per_window(arr["scheduled"], curve)
    started = per_window(arr["started"], curve)
    assert scheduled == [round(r) for r in curve.requested]
    off = [
        (i, want, got)
        for i, (want, got) in enumerate(zip(curve.requested, started, strict=True))
        if abs(got - want) > TOLERANCE * want
    ]
    lag = arr["lag_ms"].describe(percentiles=[0.5, 0.99]).round(1).to_dict()
    assert not off, f"windows off by more than 2 %: {off}; started {started}; lag {lag}"
    print(f"requested {curve.requested}\nstarted {started}\nlag {lag}")

    # the report overlays the two, per window
    out = tmp_path / "report"
    rep = run_mmload("report", str(run_dir), "--format", "md,html", "--out", str(out))
    assert rep.returncode == 0, rep.stderr
    md = next(out.glob("*.md")).read_text()
    assert "Arrival curve: requested vs started" in md
    first = f"| 0 | {curve.requested[0]:,.0f} | {scheduled[0]:,} | {started[0]:,} |"
    assert first in md, md
    assert "arrival-curve" in next(out.glob("*.html")).read_text()
