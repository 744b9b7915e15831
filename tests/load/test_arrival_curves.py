"""The arrival curves' schedules (``arrivals:``), on the generated offsets: no run, no clock.

Each shape is checked on what it promises: uniform exactly as before, poisson's gaps
exponential (Kolmogorov-Smirnov), the ramp's rate linear, the steps' plateaus, the spike's peak,
and a replayed curve's counts in every window; every worker's share together is the schedule.
"""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import pytest
from scipy import stats

from mmload.config.scenario import (
    SCENARIO_DIR,
    RunOptions,
    Scenario,
    apply_options,
    load_scenario,
)
from mmload.load.curves import peak_rate, requested_windows
from mmload.load.phases import spawn_rate
from mmload.load.plan import Plan
from mmload.load.schedule import UniformArrivals, arrival_schedule

CURVE = SCENARIO_DIR / "curves" / "restart-0900.csv"


def storm(**fields: object) -> Scenario:
    return Scenario.model_validate({"name": "s", "kind": "storm", **fields})


def per_window(offsets: list[float], width: float, n: int) -> list[int]:
    counts = [0] * n
    for o in offsets:
        counts[min(n - 1, int(o // width))] += 1
    return counts


def offsets(s: Scenario) -> list[float]:
    sched = arrival_schedule(s)
    return [sched.offset(i) for i in range(sched.users)]


def test_uniform_is_the_default_and_unchanged() -> None:
    s = storm(users=15_000, arrival_s=900)
    assert s.arrivals.curve == "uniform"
    sched = arrival_schedule(s)
    assert sched == UniformArrivals(15_000, 900)
    assert [sched.offset(i) for i in (0, 1, 14_999)] == [0.0, 0.06, 14_999 * 900 / 15_000]
    assert sched.due(0) == 1 and sched.due(60) == 1001 and sched.due(900) == 15_000
    assert requested_windows(sched, 10) == [pytest.approx(10_000 / 60, abs=1e-3)] * 90


def test_poisson_inter_arrivals_are_exponential_and_seeded() -> None:
    s = storm(users=5000, arrival_s=500, arrivals={"curve": "poisson", "seed": 7})
    times = offsets(s)
    assert times == sorted(times) and times[0] >= 0 and times[-1] < 500
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.mean(gaps) == pytest.approx(0.1, rel=0.05)
    ks = stats.kstest(gaps, "expon", args=(0, 0.1))
    assert ks.pvalue > 0.01, ks
    uniform_gaps = [0.1] * len(gaps)  # the test can fail: evenly spaced arrivals are not Poisson
    assert stats.kstest(uniform_gaps, "expon", args=(0, 0.1)).pvalue < 1e-6
    assert offsets(s) == times  # the same seed, the same schedule (every worker computes it)
    assert offsets(storm(users=5000, arrival_s=500, arrivals={"curve": "poisson"})) != times


def test_ramp_rate_rises_linearly() -> None:
    s = storm(arrivals={"curve": "ramp", "start_per_s": 2, "end_per_s": 20, "duration_s": 600})
    assert (s.users, s.arrival_s) == (6600, 600)  # the curve's own totals
    rates = [c / 30 for c in per_window(offsets(s), 30, 20)]
    fit = stats.linregress([30 * i + 15 for i in range(20)], rates)
    assert fit.slope == pytest.approx(18 / 600, rel=0.01)
    assert fit.intercept == pytest.approx(2, abs=0.1) and fit.rvalue > 0.9999
    # --scale keeps the shape: a tenth of the users in a tenth of the time, the same rates
    scaled = s.scaled(0.1)
    assert (scaled.users, scaled.arrival_s) == (660, 60)
    assert [c / 3 for c in per_window(offsets(scaled), 3, 20)] == pytest.approx(rates, abs=0.35)


def test_steps_are_plateaus_by_users_or_rate() -> None:
    steps = [
        {"duration_s": 60, "users": 120},
        {"duration_s": 60, "rate_per_s": 10},
        {"duration_s": 30, "rate_per_s": 0},
        {"duration_s": 60, "users": 60},
    ]
    s = storm(arrivals={"curve": "steps", "steps": steps})
    assert (s.users, s.arrival_s) == (780, 210)
    counts = per_window(offsets(s), 10, 21)
    assert counts == [20] * 6 + [100] * 6 + [0] * 3 + [10] * 6


def test_spike_peaks_at_its_time_for_its_width() -> None:
    spike = {
        "curve": "spike",
        "baseline_per_s": 5,
        "peak_per_s": 50,
        "at_s": 120,
        "width_s": 30,
        "duration_s": 300,
    }
    s = storm(arrivals=spike)
    assert (s.users, s.arrival_s) == (5 * 270 + 50 * 30, 300)
    counts = per_window(offsets(s), 10, 30)
    assert counts[12:15] == [500, 500, 500]
    assert set(counts[:12] + counts[15:]) == {50}
    # users given: the shape is kept, the totals are the scenario's
    half = storm(users=1425, arrival_s=150, arrivals=spike)
    assert per_window(offsets(half), 5, 30)[12:15] == [250] * 3


def test_replay_of_the_checked_in_curve_keeps_every_window() -> None:
    """The 09:00 restart curve (per-10 s counts): the schedule holds each interval's count,
    scaled to 0.1 in count, with and without a time scale."""
    raw = [int(line.split(",")[1]) for line in CURVE.read_text().splitlines()[3:]]
    assert sum(raw) == 15_000 and len(raw) == 90 and max(raw) > 8 * min(raw)  # not uniform
    s = storm(arrivals={"curve": "replay", "counts": raw, "scale": 0.1})
    assert (s.users, s.arrival_s) == (1500, 900)
    assert per_window(offsets(s), 10, 90) == [c // 10 for c in raw]
    assert requested_windows(arrival_schedule(s), 10) == [c / 10 for c in raw]
    fast = storm(arrivals={"curve": "replay", "counts": raw, "scale": 0.1, "time_scale": 0.1})
    assert (fast.users, fast.arrival_s) == (1500, 90)
    assert per_window(offsets(fast), 1, 90) == [c // 10 for c in raw]


def test_the_loaded_scenario_reads_its_csv(tmp_path: Path) -> None:
    s, _ = load_scenario("sev0-replay-restart")
    assert s.arrivals.curve == "replay" and len(s.arrivals.counts) == 90
    assert (s.users, s.arrival_s) == (15_000, 900)
    assert max(requested_windows(arrival_schedule(s), 10)) == 540
    # --scale 0.1 (as `mmload run sev0-replay-restart --scale 0.1`): 1,500 users in 90 s, every
    # 1 s of the run holding a 10 s count of the curve, scaled to 0.1
    scaled = apply_options(s, RunOptions(target="http://127.0.0.1:9", scale=0.1))
    assert (scaled.users, scaled.arrival_s) == (1500, 90)
    raw = [int(line.split(",")[1]) for line in CURVE.read_text().splitlines()[3:]]
    assert per_window(offsets(scaled), 1, 90) == [c // 10 for c in raw]


@pytest.mark.parametrize("workers", [1, 3])
def test_every_worker_share_together_is_the_schedule(workers: int) -> None:
    s = storm(arrivals={"curve": "ramp", "start_per_s": 0, "end_per_s": 9, "duration_s": 20})
    sched = arrival_schedule(s)
    plans = [Plan.for_process(s, 1000.0, workers, k, f"w{k}") for k in range(workers)]
    times = sorted(
        t
        for k, plan in enumerate(plans)
        for j in range(sched.users)
        if (g := plan.next_user_index()) < sched.users and (t := plan.arrival_time(g))
    )
    assert times == [1000.0 + sched.offset(g) for g in range(sched.users)]
    assert sched.due(20) == sched.users == 90


def test_users_spawn_ahead_of_a_steep_curve() -> None:
    """Users are spawned (then sleep until their slot) at 2x the curve's peak rate, so a
    front-loaded curve's users exist before they are due; uniform keeps 4x its rate."""
    spike = {
        "curve": "spike",
        "baseline_per_s": 5,
        "peak_per_s": 200,
        "at_s": 0,
        "width_s": 10,
        "duration_s": 100,
    }
    sched = arrival_schedule(storm(arrivals=spike))
    assert peak_rate(sched) == 200
    rate = spawn_rate(sched.users, sched.duration_s, peak_rate(sched))
    assert rate == 400 and all(rate * t >= sched.due(t) for t in range(1, 100))
    uniform = arrival_schedule(storm(users=1500, arrival_s=90))
    assert spawn_rate(1500, 90, peak_rate(uniform)) == 4 * 1500 / 90
