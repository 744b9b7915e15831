"""SLO verdicts from client-side measurements and, with a Prometheus URL, server-side PromQL.

One rule for every verdict (:func:`evaluate`): a configured SLO whose value could not be
measured has ``passed: null`` (``unmeasured``): it fails the run unless the scenario lists it in
``slos.optional``. The measures come from the run record at the end of a run
(:mod:`mmload.load.summary`) or from the live statistics for one ceiling interval
(:func:`window_verdicts`); both read percentiles through ``mmload.hdr`` only.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mmload.config.scenario import AT_LEAST_SLOS, SERVER_SIDE_SLOS, PromQueries, SLOs
from mmload.errors import RunFailed, UserError
from mmload.load.livestats import LiveStats
from mmload.record import PromPanel, PromSnapshot

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


def prom_query(base_url: str, expr: str, timeout_s: float = 5.0) -> float | None:
    """Evaluate an instant PromQL query; the first sample's value, or None (no data / error)."""
    url = base_url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body = json.loads(resp.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("status") != "success":
        return None
    result = (body.get("data") or {}).get("result") or []
    if not result:
        return None
    value = result[0].get("value") or [None, None]
    try:
        v = float(value[1])
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) or math.isinf(v) else v


def check_prometheus(base_url: str, timeout_s: float = 5.0) -> None:
    """A real Prometheus answers ``/api/v1/query?query=up`` with its JSON; else a UserError
    naming ``--prometheus`` (checked before a run starts)."""
    url = base_url.rstrip("/") + "/api/v1/query?query=up"
    why = None
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body = json.loads(resp.read().decode("utf-8"))
        data = body.get("data") if isinstance(body, dict) else None
        if (
            body.get("status") != "success"
            or not isinstance(data, dict)
            or "resultType" not in data
        ):
            why = "answered, but not with Prometheus' query API JSON"
    except urllib.error.HTTPError as exc:
        why = f"answered HTTP {exc.code}"
    except (OSError, ValueError, AttributeError) as exc:
        reason = getattr(exc, "reason", None) or exc
        why = f"did not answer ({reason})" if isinstance(exc, OSError) else "answered non-JSON"
    if why:
        raise UserError(
            f"{base_url} is not a Prometheus: GET /api/v1/query?query=up {why}",
            source="command line",
            field="--prometheus",
        )


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


# The report's server panels (record.PROMETHEUS_PANELS), in Mattermost's metric names.
PANEL_QUERIES = {
    "app_cpu_percent": "100 * rate(process_cpu_seconds_total[{window}])",
    "db_connections": "mattermost_db_master_connections_total",
    "api_p99_ms": (
        "1000 * histogram_quantile(0.99, sum by (handler, le) "
        "(rate(mattermost_api_time_bucket[{window}])))"
    ),
}


def prom_range(base_url: str, expr: str, start: float, end: float, step_s: float) -> PromPanel:
    """One range query, as Prometheus answered it (its error text when it did not)."""
    q = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step_s})
    try:
        with urllib.request.urlopen(
            f"{base_url.rstrip('/')}/api/v1/query_range?{q}", timeout=10
        ) as r:
            body = json.loads(r.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        return PromPanel(query=expr, error=f"HTTP {exc.code}")
    except (OSError, ValueError) as exc:
        return PromPanel(query=expr, error=str(exc)[:200])
    if not isinstance(body, dict) or body.get("status") != "success":
        err = body.get("error") if isinstance(body, dict) else "not Prometheus JSON"
        return PromPanel(query=expr, error=str(err)[:200])
    return PromPanel(query=expr, result=(body.get("data") or {}).get("result") or [])


def prometheus_snapshot(base_url: str, started_at: str, ended_at: str) -> PromSnapshot:
    """The server panels over the run's window (prometheus.json, ``record.PromSnapshot``)."""
    start = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    end = datetime.fromisoformat(ended_at.replace("Z", "+00:00"))
    span = max(1.0, (end - start).total_seconds())
    step = max(1.0, round(span / 300))  # at most ~300 points per series
    window = f"{max(5, int(4 * step))}s"  # rate() needs a few scrapes inside each step
    panels = {
        name: prom_range(
            base_url, expr.format(window=window), start.timestamp(), end.timestamp(), step
        )
        for name, expr in PANEL_QUERIES.items()
    }
    return PromSnapshot(url=base_url, start=start, end=end, step_s=step, panels=panels)


def server_measures(
    base_url: str, queries: PromQueries, window_s: float
) -> dict[str, float | None]:
    """The server-side measures over the last ``window_s`` seconds."""
    window = f"{max(1, round(window_s))}s"
    return {
        "http_5xx_rate": prom_query(base_url, queries.http_5xx_rate.format(window=window)),
        "cpu_percent": prom_query(base_url, queries.cpu_percent.format(window=window)),
    }


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
