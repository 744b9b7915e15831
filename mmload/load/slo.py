"""SLO verdicts from client-side measurements and, with a Prometheus URL, server-side PromQL."""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
from typing import Any

from mmload.config.scenario import PromQueries, SLOs
from mmload.load.livestats import LiveStats

LOGIN = "POST /api/v4/users/login"

CLIENT_SLOS = {
    "login_p99_ms": "p99 of POST /api/v4/users/login (ms)",
    "p99_ms": "p99 of all requests (ms)",
    "avg_ms": "average of all requests (ms)",
    "error_rate": "failed requests / all requests",
}
SERVER_SLOS = {
    "http_5xx_rate": "server 5xx responses / all responses (PromQL)",
    "cpu_percent": "app server CPU % (PromQL)",
}


def prom_query(base_url: str, expr: str, timeout_s: float = 5.0) -> float | None:
    """Evaluate an instant PromQL query; the first sample's value, or None (no data / error)."""
    url = base_url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body = json.loads(resp.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    if body.get("status") != "success":
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
    slos: SLOs, client: dict[str, Any], server: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """One verdict per configured SLO: name, description, source, op, threshold, value, passed.

    A value that could not be measured gives ``passed: null`` (never a silent pass); server-side
    SLOs appear only when a Prometheus URL was given.
    """
    verdicts = []
    for name, desc in CLIENT_SLOS.items():
        threshold = getattr(slos, name)
        if threshold is not None:
            verdicts.append(_verdict(name, desc, "client", threshold, client.get(name)))
    if server is not None:
        for name, desc in SERVER_SLOS.items():
            threshold = getattr(slos, name)
            if threshold is not None:
                verdicts.append(_verdict(name, desc, "prometheus", threshold, server.get(name)))
    return verdicts


def _verdict(name: str, desc: str, source: str, threshold: float, value: Any) -> dict[str, Any]:
    passed = None if value is None else bool(value < threshold)
    return {
        "name": name,
        "description": desc,
        "source": source,
        "op": "<",
        "threshold": threshold,
        "value": value,
        "passed": passed,
    }


def all_held(verdicts: list[dict[str, Any]]) -> bool:
    """No verdict failed (unmeasurable ones do not count as failures)."""
    return all(v["passed"] is not False for v in verdicts)


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
    overall = live.window(t_from, t_to, tuple(slos.exclude))
    login = live.window(t_from, t_to, only=LOGIN)
    client = {
        "p99_ms": overall["p99_ms"],
        "avg_ms": overall["avg_ms"],
        "error_rate": overall["error_rate"],
        "login_p99_ms": login["p99_ms"],
    }
    server = None
    if prometheus:
        server = server_measures(prometheus, queries, t_to - t_from)
    return evaluate(slos, client, server)
