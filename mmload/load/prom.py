"""Prometheus, for the load engine: the check before a run, the server-side SLO measures
(instant PromQL) and the run window's server panels stored as prometheus.json."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime

from mmload.config.scenario import PromQueries
from mmload.errors import UserError
from mmload.record import PromPanel, PromSnapshot


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


def server_measures(
    base_url: str, queries: PromQueries, window_s: float
) -> dict[str, float | None]:
    """The server-side measures over the last ``window_s`` seconds."""
    window = f"{max(1, round(window_s))}s"
    return {
        "http_5xx_rate": prom_query(base_url, queries.http_5xx_rate.format(window=window)),
        "cpu_percent": prom_query(base_url, queries.cpu_percent.format(window=window)),
    }


# The report's server panels (record.PROMETHEUS_PANELS), in Mattermost's metric names.
PANEL_QUERIES = {
    "app_cpu_percent": (  # per app node: the busy share of all its CPUs (node_exporter)
        "100 * (1 - avg by (instance) "
        '(rate(node_cpu_seconds_total{{job="node-app",mode="idle"}}[{window}])))'
    ),
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
