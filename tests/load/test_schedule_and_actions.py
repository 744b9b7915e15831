"""Open-model schedule, the web client's reconnect backoff, the action mix and the idle rule."""

from __future__ import annotations

import random
import statistics

import pytest

from mmload.config.actions import load_table
from mmload.config.scenario import WebSocketSpec
from mmload.load.actions import ActionPicker, idle_seconds
from mmload.load.schedule import Backoff, global_index, herd_offsets, uniform_offset


def test_uniform_arrivals_cover_the_window_at_a_constant_rate() -> None:
    offsets = [uniform_offset(i, 15_000, 900) for i in range(15_000)]
    assert offsets[0] == 0 and offsets[-1] == pytest.approx(900 - 900 / 15_000)
    per_minute = [sum(1 for o in offsets if m * 60 <= o < (m + 1) * 60) for m in range(15)]
    assert per_minute == [1000] * 15


@pytest.mark.parametrize("users,workers", [(101, 2), (300, 3), (7, 4)])
def test_workers_interleave_so_every_user_is_scheduled_once(users: int, workers: int) -> None:
    shares = [users // workers + (1 if k < users % workers else 0) for k in range(workers)]
    indexes = sorted(global_index(k, workers, j) for k in range(workers) for j in range(shares[k]))
    assert indexes == list(range(users))


def test_backoff_is_the_web_clients_rule() -> None:
    b = Backoff.from_spec(WebSocketSpec())  # 3 s, x failures^2 after 7, <= 5 min, 0-2 s jitter
    assert [b.base_delay(f) for f in (0, 1, 7)] == [3.0, 3.0, 3.0]
    assert b.base_delay(8) == 3.0 * 64
    assert b.base_delay(9) == 243.0
    assert b.base_delay(10) == 300.0 and b.base_delay(50) == 300.0
    rng = random.Random(1)
    delays = [b.delay(0, rng) for _ in range(2000)]
    assert min(delays) >= 3.0 and max(delays) < 5.0


def test_reconnect_herd_is_front_loaded_after_the_outage() -> None:
    b = Backoff.from_spec(WebSocketSpec())
    short = herd_offsets(2000, 20.0, b, seed=3)
    # fewer than 7 failures: every client retries every 3-5 s, all back within one period
    assert min(short) >= 20.0 and max(short) < 25.0
    # a 60 s outage: the 8th close (the drop and 7 failed retries, ~28 s) draws 3*8^2 = 192 s,
    # so the herd arrives together, about 213-229 s after the drop
    long = sorted(herd_offsets(2000, 60.0, b, seed=3))
    assert min(long) >= 60.0 and max(long) < 60 + 302
    assert long[int(0.95 * len(long))] - long[int(0.05 * len(long))] < 10.0


def test_action_table_matches_load_test_ng_frequencies() -> None:
    table = {a.name: a for a in load_table()}
    expected = {
        "SwitchChannel": 6.5219,
        "ScrollChannel": 1.9873,
        "UnreadCheck": 1.0,
        "CreatePost": 1.0,
        "OpenDirectOrGroupChannel": 0.9843,
        "ViewGlobalThreads": 0.6023,
    }
    for name, weight in expected.items():
        assert table[name].weight == weight
    required = [
        "SwitchChannel",
        "ScrollChannel",
        "CreatePost",
        "UnreadCheck",
        "ViewGlobalThreads",
        "AddReaction",
        "SearchUsers",
        "FullReload",
    ]
    assert all(table[n].handler for n in required)


def test_picker_follows_the_weights() -> None:
    picker = ActionPicker(rng=random.Random(7))
    n = 40_000
    counts: dict[str, int] = {}
    for _ in range(n):
        name = picker.pick().name
        counts[name] = counts.get(name, 0) + 1
    ratio = counts["SwitchChannel"] / counts["CreatePost"]
    assert ratio == pytest.approx(6.5219, rel=0.1)
    assert counts["SwitchChannel"] / n == pytest.approx(picker.share("SwitchChannel"), rel=0.03)
    assert "JoinChannel" not in counts  # not implemented: never picked


def test_only_listed_actions() -> None:
    picker = ActionPicker({"UnreadCheck": 1}, only_listed=True)
    assert {picker.pick().name for _ in range(200)} == {"UnreadCheck"}


def test_idle_rule_is_uniform_with_the_configured_mean() -> None:
    rng = random.Random(5)
    xs = [idle_seconds(1000, 20_000, rng) for _ in range(20_000)]
    assert min(xs) >= 1.0 and max(xs) < 39.0
    assert statistics.mean(xs) == pytest.approx(20.0, rel=0.02)
