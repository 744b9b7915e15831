"""SLO verdicts from client-side measurements and, with a Prometheus URL, server-side PromQL.

One rule for every verdict (:func:`evaluate`): a configured SLO whose value could not be
measured has ``passed: null`` (``unmeasured``): it fails the run unless the scenario lists it in
``slos.optional``. The measures come from the run record at the end of a run
(:mod:`mmload.load.summary`) or from the live statistics for one ceiling interval
(:func:`window_verdicts`); both read percentiles through ``mmload.hdr`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmload.config.scenario import AT_LEAST_SLOS, SERVER_SIDE_SLOS, PromQueries, SLOs
from mmload.errors import RunFailed, UserError
from mmload.load.livestats import LiveStats
from mmload.load.prom import server_measures

LOGIN = "POST /api/v4/users/login"

DESCRIPTIONS = {
    "login_p99_ms": "p99 of the successful logins, POST /api/v4/users/login (ms)",
    "login_success_rate": "logins answered 200 / logins sent",
    "time_to_loaded_p99_ms": "p99 from each scheduled arrival to its web app loaded (ms)",
    "p99_ms": "p99 of all requests (ms)",
    "avg_ms": "average of all requests (ms)",
    "error_rate": "failed requests / all requests",
    "auth_error_rate": "requests refused 401/403 / all requests",
    "rate_limited_rate": "requests refused 429 / all requests",
    "server_error_rate": "requests answered 5xx / all requests",
    "transport_error_rate": "requests with no answer (refused, reset, timeout) / all requests",
    "http_5xx_rate": "server 5xx responses / all responses (PromQL)",
    "cpu_percent": "app server CPU % (PromQL)",
}
# error classes of a failed request, and the SLO holding each one's rate
ERROR_CLASSES = {
    "auth": "auth_error_rate",
    "rate_limited": "rate_limited_rate",
    "server": "server_error_rate",
    "transport": "transport_error_rate",
}
CLASS_WORDS = {
    "auth": "401/403",
    "rate_limited": "429 rate-limited",
    "server": "5xx",
    "transport": "no answer",
    "other": "other errors",
}


def class_detail(classes: Mapping[str, int]) -> str | None:
    """``134 429 rate-limited, 2 5xx`` (None when there is nothing to say)."""
    items = sorted(((n, c) for c, n in classes.items() if n), reverse=True)
    return ", ".join(f"{n:,} {CLASS_WORDS[c]}" for n, c in items) or None


def class_rates(classes: Mapping[str, int], n: int) -> dict[str, float | None]:
    """The rate SLO of every error class (None when no request was sent)."""
    return {slo: (classes.get(c, 0) / n if n else None) for c, slo in ERROR_CLASSES.items()}


def require_prometheus(slos: SLOs, prometheus: str | None) -> None:
    """Server-side SLOs that are not optional need ``--prometheus`` (known before the run)."""
    needed = [n for n in slos.thresholds() if n in SERVER_SIDE_SLOS and n not in slos.optional]
    if needed and not prometheus:
        raise UserError(
            f"the scenario's SLOs {', '.join(needed)} are measured by Prometheus: give "
            "--prometheus URL (or list them in slos.optional)",
            source="command line",
            field="--prometheus",
        )


# SLOs a ceiling interval cannot measure: it has no schedule, and its users log in before it
NOT_IN_CEILING = ("login_p99_ms", "login_success_rate", "time_to_loaded_p99_ms")


def require_measurable(kind: str, slos: SLOs, source: str | None) -> None:
    """A required SLO the scenario's kind can never measure is bad input (known before the run)."""
    if kind != "ceiling":
        return
    for name in slos.thresholds():
        if name in NOT_IN_CEILING and name not in slos.optional:
            raise UserError(
                "a ceiling interval has no logins or schedule to measure it by: remove it or "
                "list it in slos.optional",
                source=source or "scenario",
                field=f"slos.{name}",
            )


def evaluate(
    slos: SLOs,
    client: Mapping[str, Any],
    server: Mapping[str, Any] | None,
    details: Mapping[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    """One verdict per configured SLO: name, description, source, op, threshold, value,
    passed (true, false, or null when unmeasured), optional, detail.

    ``server`` is None when no Prometheus was given: every server-side SLO is then unmeasured.
    """
    verdicts = []
    for name, threshold in slos.thresholds().items():
        source = "prometheus" if name in SERVER_SIDE_SLOS else "client"
        measures = server if source == "prometheus" else client
        value = None if measures is None else measures.get(name)
        verdicts.append(
            _verdict(name, source, threshold, value, name in slos.optional, (details or {}))
        )
    return verdicts


def _verdict(
    name: str,
    source: str,
    threshold: float,
    value: Any,
    optional: bool,
    details: Mapping[str, str | None],
) -> dict[str, Any]:
    op = ">=" if name in AT_LEAST_SLOS else "<"
    if value is None:
        passed = None
    else:
        passed = bool(value >= threshold) if op == ">=" else bool(value < threshold)
    out = {
        "name": name,
        "description": DESCRIPTIONS[name],
        "source": source,
        "op": op,
        "threshold": threshold,
        "value": value,
        "passed": passed,
        "optional": optional,
    }
    if details.get(name):
        out["detail"] = details[name]
    return out


def unmeasured_required(verdicts: list[dict[str, Any]]) -> list[str]:
    """Names of the verdicts that could not be measured and are not optional."""
    return [v["name"] for v in verdicts if v["passed"] is None and not v.get("optional")]


def all_held(verdicts: list[dict[str, Any]]) -> bool:
    """Every SLO passed (an optional one that could not be measured aside)."""
    return all(v["passed"] is True or (v["passed"] is None and v.get("optional")) for v in verdicts)


def failing(verdicts: list[dict[str, Any]]) -> list[str]:
    """Names of the verdicts that failed."""
    return [v["name"] for v in verdicts if v["passed"] is False]


def window_measures(live: LiveStats, slos: SLOs, t_from: float, t_to: float) -> dict[str, Any]:
    """The client-side measures of the requests sent in [t_from, t_to), from the live stats."""
    overall = live.window(t_from, t_to, tuple(slos.exclude))
    login = live.window(t_from, t_to, only=LOGIN)
    login_ok = live.window(t_from, t_to, only=LOGIN, ok_only=True)
    n = int(overall["count"] or 0)
    return {
        "p99_ms": overall["p99_ms"],
        "avg_ms": overall["avg_ms"],
        "error_rate": overall["error_rate"],
        "login_p99_ms": login_ok["p99_ms"],
        "login_success_rate": (login_ok["count"] / login["count"]) if login["count"] else None,
        **class_rates(overall["classes"], n),
    }


def window_verdicts(
    live: LiveStats,
    slos: SLOs,
    queries: PromQueries,
    t_from: float,
    t_to: float,
    prometheus: str | None = None,
) -> list[dict[str, Any]]:
    """The verdicts of the requests sent in [t_from, t_to) (the ceiling loop's interval), with
    the server-side measures over that long when a Prometheus URL is given."""
    server = None
    if prometheus:
        server = server_measures(prometheus, queries, t_to - t_from)
    return evaluate(slos, window_measures(live, slos, t_from, t_to), server)


def stop_if_unmeasured(verdicts: list[dict[str, Any]], users: int) -> None:
    """The ceiling loop cannot judge an interval whose required SLO has no value: stop."""
    missing = unmeasured_required(verdicts)
    if missing:
        raise RunFailed(
            f"ceiling: the interval at {users:,} users could not measure "
            f"{', '.join(missing)} (no samples, or Prometheus gave no data): the loop cannot "
            "judge it (mark such SLOs optional to skip them)"
        )
