"""Abort rules as units, on virtual time: the scenario model refuses bad rules with one line, a
watch fed per-second request rows fires exactly when the live view's window has held above the
threshold for ``for_s`` (and not when the breach is shorter), an empty window keeps a breach,
``http_5xx_rate`` counts answered requests only, an aborted record is never a PASS, and
``--max-users`` caps a scenario's users (and a ceiling's)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mmload import record
from mmload.config.loader import load_model
from mmload.config.scenario import AbortRule, RunOptions, Scenario, apply_options
from mmload.errors import UserError
from mmload.load.abort import AbortWatch, abort_measures
from mmload.load.context import StopFlag
from mmload.load.livestats import LOGIN, LiveStats

BASE = int(time.time())  # LiveStats keeps the last 600 s of wall time: stay near it
PER_S = 10


def feed(live: LiveStats, second: int, failing: int, status: int = 503, name: str = "GET /x"):
    """PER_S requests sent in second ``BASE + second``, ``failing`` of them failed."""
    n = PER_S
    live.add_requests(
        {
            "timestamp": [(BASE + second) * 1_000_000] * n,
            "name": [name] * n,
            "latency_ms": [5.0] * n,
            "error": [f"{status} failed" if i < failing else None for i in range(n)],
            "status": [status if i < failing else 200 for i in range(n)],
            "user": [None] * n,
        }
    )


def drive(watch: AbortWatch, live: LiveStats, until_s: float, step_s: float = 0.5):
    """Check the watch every ``step_s`` of virtual time from BASE to BASE + until_s."""
    t = 0.0
    while t <= until_s:
        watch.check(BASE + t, live)
        t += step_s
    return watch.fired


def rule(**kw) -> AbortRule:
    return AbortRule.model_validate(kw)


def test_fires_when_the_window_held_above_for_for_s() -> None:
    live = LiveStats()
    for s in range(20):
        feed(live, s, 0)
    for s in range(20, 60):
        feed(live, s, PER_S)
    stop = StopFlag()
    watch = AbortWatch([rule(metric="error_rate", above=0.2, for_s=5)], stop)
    fired = drive(watch, live, 60)
    # at BASE+t the window holds seconds t-12 .. t-3: the failing share passes 0.2 at t=25
    # (3 of 10 seconds failing), 5 s later the rule fires, seeing 8 of 10 seconds failing
    assert fired is not None
    assert fired.since == BASE + 25 and fired.at == BASE + 30
    assert fired.value == pytest.approx(0.8)
    assert stop and stop.outcome == "aborted" and "error_rate above 0.2 for 5 s" in stop.reason
    meta = watch.record()["abort"]
    assert meta["rule"] == "error_rate above 0.2 for 5 s" and meta["threshold"] == 0.2
    assert meta["at"] == record.iso_epoch(BASE + 30)


def test_a_shorter_window_reacts_sooner() -> None:
    live = LiveStats()
    for s in range(20):
        feed(live, s, 0)
    for s in range(20, 40):
        feed(live, s, PER_S)
    watch = AbortWatch([rule(metric="error_rate", above=0.2, for_s=5, window_s=2)], StopFlag())
    fired = drive(watch, live, 40)
    # the window is seconds t-4 .. t-3: at t=23 it holds 19 and 20, half failing
    assert fired is not None and fired.since == BASE + 23 and fired.at == BASE + 28
    assert fired.rule.name == "error_rate above 0.2 for 5 s (window 2 s)"


@pytest.mark.parametrize(("for_s", "fires"), [(7, True), (8, False)])
def test_a_shorter_breach_does_not_fire_and_resets(for_s: float, fires: bool) -> None:
    """3 failing seconds every 20: the window (10 s) is above 0.2 while it holds all three,
    t = 15 .. 22 after each: a breach of 7 s."""
    live = LiveStats()
    for s in range(60):
        feed(live, s, PER_S if s % 20 in (10, 11, 12) else 0)
    stop = StopFlag()
    watch = AbortWatch([rule(metric="error_rate", above=0.2, for_s=for_s)], stop)
    fired = drive(watch, live, 50)  # the third breach (t = 55 .. 62) is left out
    assert bool(stop) is fires
    if fires:
        assert fired is not None and fired.since == BASE + 15 and fired.at == BASE + 22
    else:
        assert fired is None and watch.since == [None]  # the last breach ended


def test_an_empty_window_keeps_the_breach() -> None:
    """A target that stops answering leaves no rows in the window: the breach goes on."""
    live = LiveStats()
    for s in range(20):
        feed(live, s, 0)
    for s in range(20, 25):
        feed(live, s, PER_S)
    watch = AbortWatch([rule(metric="error_rate", above=0.2, for_s=20)], StopFlag())
    fired = drive(watch, live, 60)
    assert fired is not None and fired.since == BASE + 25 and fired.at == BASE + 45
    assert fired.value is None and "no request measured" in fired.sentence()


def test_nothing_measured_starts_nothing() -> None:
    watch = AbortWatch([rule(metric="error_rate", above=0.0, for_s=0)], StopFlag())
    assert drive(watch, LiveStats(), 30) is None


def test_measures_http_5xx_over_answered_and_login_p99_of_successes() -> None:
    live = LiveStats()
    feed(live, 10, 2, status=503)  # 2 of 10 answered 5xx
    feed(live, 10, 5, status=0)  # 5 of 10 never answered
    feed(live, 11, 3, status=429, name=LOGIN)
    m = abort_measures(live, (), BASE + 14)
    assert m["http_5xx_rate"] == pytest.approx(2 / 25)  # 30 requests, 5 unanswered
    assert m["server_error_rate"] == pytest.approx(2 / 30)
    assert m["error_rate"] == pytest.approx(10 / 30)
    assert m["login_p99_ms"] == pytest.approx(5.0, rel=0.01)
    watch = AbortWatch([rule(metric="http_5xx_rate", above=0.05, for_s=0)], StopFlag())
    fired = watch.check(BASE + 14, live)
    assert fired is not None and fired.value == pytest.approx(0.08)


def test_the_watch_checks_once_a_second() -> None:
    live = LiveStats()
    calls = []
    watch = AbortWatch([rule(metric="error_rate", above=0.5, for_s=0)], StopFlag())
    real = live.window
    live.window = lambda *a, **k: calls.append(a) or real(*a, **k)  # type: ignore[method-assign]
    for i in range(10):
        watch.check(BASE + i * 0.25, live)
    assert len({c[0] for c in calls}) == 3  # t = 0, 1, 2


@pytest.mark.parametrize(
    ("rules", "field", "words"),
    [
        ([{"metric": "error_rate", "above": 1.5, "for_s": 30}], "abort[0]", "below 1"),
        ([{"metric": "error_rate", "above": -1}], "abort[0].above", ""),
        ([{"metric": "p99_ms", "above": 1e300}], "abort[0].above", ""),
        ([{"metric": "error_rate", "above": 0.2, "for_s": float("nan")}], "abort[0].for_s", ""),
        ([{"metric": "nope", "above": 1}], "abort[0].metric", ""),
        ([{"metric": "error_rate", "above": 0.2, "within": 3}], "abort[0].within", ""),
        ([{"metric": "error_rate", "above": 0.2}] * 21, "abort", "20"),
    ],
)
def test_bad_rules_are_one_line_naming_the_field(
    tmp_path: Path, rules: list, field: str, words: str
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps({"name": "s", "kind": "storm", "abort": rules}), encoding="utf-8")
    with pytest.raises(UserError) as err:
        load_model(Scenario, path)
    line = str(err.value)
    assert "\n" not in line and field in line and words in line


def test_an_aborted_run_is_never_a_pass() -> None:
    meta = record.parse_meta(
        {
            "outcome": "aborted",
            "slos": [],
            "abort": {
                "rule": "error_rate above 0.2 for 30 s",
                "metric": "error_rate",
                "value": 0.5,
                "at": "2026-12-02T13:00:00Z",
            },
        },
        "run.json",
    )
    verdict = record.run_verdict(meta)
    assert verdict.status == "FAIL" and not verdict.ok
    assert verdict.reasons == [
        "aborted by the rule error_rate above 0.2 for 30 s: error_rate 0.5 at 2026-12-02T13:00:00Z"
    ]


def test_max_users_caps_users_and_the_ceiling() -> None:
    storm = Scenario.model_validate({"name": "s", "kind": "storm", "users": 500})
    opts = RunOptions(target="http://127.0.0.1:1", users=800, max_users=20)
    assert apply_options(storm, opts).users == 20
    assert apply_options(storm, RunOptions(target="http://127.0.0.1:1", scale=2)).users == 1000
    ceiling = Scenario.model_validate({"name": "c", "kind": "ceiling"})
    capped = apply_options(ceiling, RunOptions(target="http://127.0.0.1:1", max_users=30))
    assert capped.ceiling.max_users == 30 and capped.ceiling.start_users == 30
