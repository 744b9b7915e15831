"""The ceiling feedback loop against a model server whose capacity is known."""

from __future__ import annotations

import pytest

from mmload.config.scenario import Ceiling, SLOs
from mmload.load.ceiling import CeilingController
from mmload.load.slo import all_held, evaluate


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
    assert "http_5xx_rate" not in by  # server-side SLOs only with a Prometheus URL
    assert not all_held(v)
    v = evaluate(
        SLOs(), {"p99_ms": 10.0, "avg_ms": 5.0}, {"http_5xx_rate": 0.5, "cpu_percent": None}
    )
    by = {x["name"]: x for x in v}
    assert by["http_5xx_rate"]["passed"] is False and by["http_5xx_rate"]["source"] == "prometheus"
    assert by["cpu_percent"]["passed"] is None
