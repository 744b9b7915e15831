"""The ceiling feedback loop against a model server whose capacity is known."""

from __future__ import annotations

import pytest

from mmload.config.scenario import Ceiling, SLOs
from mmload.errors import RunFailed
from mmload.load.ceiling import CeilingController
from mmload.load.slo import all_held, evaluate, stop_if_unmeasured, unmeasured_required


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
