"""The ceiling feedback loop against a model server whose capacity is known."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from mmload import record
from mmload.config.scenario import Ceiling, SLOs
from mmload.errors import RunFailed, UserError
from mmload.load.ceiling import CeilingController
from mmload.load.slo import (
    all_held,
    evaluate,
    require_measurable,
    stop_if_unmeasured,
    unmeasured_required,
)


def _converge(spec: Ceiling, capacity: int, limit: int = 200) -> CeilingController:
    ctl = CeilingController(spec)
    for _ in range(limit):
        step = ctl.decide(ctl.users <= capacity, [] if ctl.users <= capacity else ["avg_ms"])
        if step.done:
            return ctl
    raise AssertionError(f"did not converge: {[s.users for s in ctl.history]}")


@pytest.mark.parametrize("capacity", [37, 250, 1234])
def test_converges_to_the_capacity(capacity: int) -> None:
    spec = Ceiling(
        start_users=10,
        step_users=50,
        min_step_users=5,
        remove_fraction=0.1,
        stable_intervals=4,
        stable_tolerance=0.1,
    )
    ctl = _converge(spec, capacity)
    supported = ctl.supported_users()
    assert supported is not None
    # stable = within the tolerance band: the loop may stop while still closing in from below
    assert capacity * (1 - spec.stable_tolerance) - spec.min_step_users <= supported <= capacity
    assert ctl.broke


def test_pinned_at_max_users_stops_without_a_break() -> None:
    spec = Ceiling(start_users=10, step_users=10, max_users=30, stable_intervals=3)
    ctl = _converge(spec, capacity=10_000)
    assert ctl.supported_users() == 30 and not ctl.broke


def test_never_holding_reports_none() -> None:
    spec = Ceiling(start_users=5, step_users=5, min_step_users=1, stable_intervals=3)
    ctl = _converge(spec, capacity=0)
    assert ctl.supported_users() is None


def test_slo_verdicts_unmeasured_is_not_a_pass() -> None:
    v = evaluate(SLOs(), {"p99_ms": 2500.0, "avg_ms": None}, None)
    by = {x["name"]: x for x in v}
    assert by["p99_ms"]["passed"] is False and by["avg_ms"]["passed"] is None
    # without a Prometheus URL the server-side SLOs are unmeasured, optional by default
    assert by["http_5xx_rate"]["passed"] is None and by["http_5xx_rate"]["optional"] is True
    assert by["avg_ms"]["optional"] is False
    assert not all_held(v)
    assert unmeasured_required(v) == ["avg_ms"]
    held = evaluate(SLOs(), {"p99_ms": 10.0, "avg_ms": 5.0}, None)
    assert all_held(held) and unmeasured_required(held) == []
    v = evaluate(
        SLOs(), {"p99_ms": 10.0, "avg_ms": 5.0}, {"http_5xx_rate": 0.5, "cpu_percent": None}
    )
    by = {x["name"]: x for x in v}
    assert by["http_5xx_rate"]["passed"] is False and by["http_5xx_rate"]["source"] == "prometheus"
    assert by["cpu_percent"]["passed"] is None


def test_login_success_rate_is_at_least_and_optional_mappings() -> None:
    slos = SLOs.model_validate(
        {"login_success_rate": 0.99, "avg_ms": {"threshold": 100, "optional": True}}
    )
    assert slos.avg_ms == 100 and "avg_ms" in slos.optional and "cpu_percent" in slos.optional
    v = {x["name"]: x for x in evaluate(slos, {"login_success_rate": 0.98}, None)}
    assert v["login_success_rate"]["op"] == ">=" and v["login_success_rate"]["passed"] is False
    assert v["avg_ms"]["passed"] is None and v["avg_ms"]["optional"] is True
    v = {x["name"]: x for x in evaluate(slos, {"login_success_rate": 0.99}, None)}
    assert v["login_success_rate"]["passed"] is True
    with pytest.raises(ValueError, match="unknown SLO"):
        SLOs.model_validate({"optional": ["p98_ms"]})
    with pytest.raises(ValueError, match="unknown key"):
        SLOs.model_validate({"avg_ms": {"max": 3}})


def test_ceiling_stops_on_an_unmeasured_interval() -> None:
    v = evaluate(SLOs(optional=[]), {"p99_ms": 10.0, "avg_ms": 5.0}, None)
    with pytest.raises(RunFailed, match="could not measure http_5xx_rate, cpu_percent"):
        stop_if_unmeasured(v, 120)
    stop_if_unmeasured(evaluate(SLOs(), {"p99_ms": 10.0, "avg_ms": 5.0}, None), 120)


def test_a_non_boolean_passed_is_not_a_pass() -> None:
    """The verdict rule shared by `mmload run` and `mmload report --fail-on-slo`."""
    slo = {"name": "p99_ms", "threshold": 2000, "value": 100.0}
    for damaged in ("yes", "true", 1):
        with pytest.raises(UserError, match=r"run.json: slos\[0\]\.passed: .*valid boolean"):
            record.parse_meta(
                {"outcome": "completed", "slos": [{**slo, "passed": damaged}]}, "run.json"
            )
    meta = record.parse_meta({"outcome": "completed", "slos": [{**slo, "passed": None}]}, "x")
    assert record.run_verdict(meta).status == "FAIL"  # unmeasured, not optional


@pytest.mark.parametrize(
    ("outcome", "passed", "fail_on_slo", "expect"),
    [
        ("completed", True, True, 0),
        ("completed", False, True, 1),
        ("completed", None, True, 1),  # unmeasured
        ("completed", False, False, 0),  # --no-fail-on-slo
        ("interrupted", True, True, 130),
    ],
)
def test_run_exit_codes(outcome: str, passed: bool | None, fail_on_slo: bool, expect: int) -> None:
    from mmload.commands.load import exit_for

    value = None if passed is None else 100.0
    slos = [{"name": "p99_ms", "threshold": 2000, "value": value, "passed": passed}]
    result = SimpleNamespace(meta={"outcome": outcome, "slos": slos})
    if expect == 0:
        exit_for(result, fail_on_slo)
    elif expect == 1:
        with pytest.raises(RunFailed, match=r"^FAIL: p99_ms"):
            exit_for(result, fail_on_slo)
    else:
        with pytest.raises(SystemExit) as stop:
            exit_for(result, fail_on_slo)
        assert stop.value.code == 130


def test_run_help_lists_the_builtin_scenarios_and_says_what_duration_is() -> None:
    from click.testing import CliRunner

    from mmload.cli import cli

    out = CliRunner().invoke(cli, ["run", "--help"], terminal_width=100).output
    shipped = sorted(p.stem for p in (Path(__file__).parents[2] / "scenarios").glob("*.yaml"))
    assert {"ceiling", "sev0-login-storm", "sev0-reconnect-herd", "steady"} <= set(shipped)
    assert f"Built-in scenarios: {', '.join(shipped)}." in " ".join(out.split())
    assert "The WHOLE run in seconds" in out and "--hold" in out and "--no-fail-on-slo" in out


def test_a_ceiling_refuses_slos_its_intervals_cannot_measure() -> None:
    with pytest.raises(UserError, match=r"^c.yaml: slos.login_success_rate: a ceiling interval"):
        require_measurable("ceiling", SLOs(login_success_rate=0.99), "c.yaml")
    require_measurable(
        "ceiling", SLOs(login_success_rate=0.99, optional=["login_success_rate"]), "c"
    )
    require_measurable("storm", SLOs(login_success_rate=0.99, time_to_loaded_p99_ms=1), "s")


def test_error_classes_agree_between_the_record_and_the_live_stats() -> None:
    """The summary counts classes column-wise over the record, the live statistics per row: the
    same classes either way (401/403 auth, 429, 5xx, no answer, the rest other)."""
    import pyarrow as pa

    from mmload.load.livestats import LiveStats
    from mmload.load.summary import error_classes

    rows = [(200, None), (401, "x"), (403, "x"), (429, "x"), (500, "x"), (503, "x"), (0, "x")]
    rows += [(0, "timeout"), (404, "x"), (200, "bad body")]
    t = pa.table(
        {"status": pa.array([r[0] for r in rows], pa.int32()), "error": [r[1] for r in rows]}
    )
    expected = {"auth": 2, "rate_limited": 1, "server": 2, "transport": 2, "other": 2}
    assert error_classes(t) == expected
    live = LiveStats(keep_s=1e12)
    ts = 1_800_000_000 * 1_000_000
    live.add_requests(
        {
            "timestamp": [ts] * len(rows),
            "name": ["GET /x"] * len(rows),
            "latency_ms": [1.0] * len(rows),
            "error": [r[1] for r in rows],
            "status": [r[0] for r in rows],
        }
    )
    assert live.window(1_800_000_000, 1_800_000_001)["classes"] == expected
