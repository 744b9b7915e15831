"""The end-of-run summary: totals, per-endpoint latency, arrivals vs schedule, SLO verdicts.

Counts, failures and means come from the request rows; every latency percentile comes from the
HDR histograms (``mmload.hdr.run_percentiles``), the same numbers ``mmload report`` prints.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mmload import hdr, record
from mmload.config.scenario import PromQueries, SLOs
from mmload.load import prom, slo
from mmload.load.slo import LOGIN


def endpoint_table(run_dir: Path, pcts: hdr.RunPercentiles) -> list[dict[str, Any]]:
    """count, failures and mean (rows) and latency percentiles (HDR) per request name."""
    t = record.read_table(run_dir, record.REQUESTS, ["name", "latency_ms", "error"])
    if t.num_rows == 0:
        return []
    df = t.to_pandas()
    rows = []
    for name, g in df.groupby("name", sort=True):
        h = pcts.endpoints.get(str(name), {})
        rows.append(
            {
                "name": name,
                "count": len(g),
                "failures": int(g["error"].notna().sum()),
                "avg_ms": float(g["latency_ms"].mean()),
                "p50_ms": h.get("p50_ms"),
                "p99_ms": h.get("p99_ms"),
                "max_ms": h.get("max_ms"),
            }
        )
    return rows


def arrival_stats(run_dir: Path, phase: str = "login") -> dict[str, Any]:
    """Scheduled vs started vs loaded; lag percentiles; time to loaded from the schedule."""
    t = record.read_table(run_dir, record.ARRIVALS)
    if t.num_rows == 0:
        return {"scheduled": 0}
    df = t.to_pandas()
    df = df[df["phase"].fillna("login") == phase]
    if df.empty:
        return {"scheduled": 0}
    lag = df["lag_ms"].dropna().to_numpy()
    loaded = df[df["outcome"] == "loaded"]
    ttl = (loaded["loaded"] - loaded["scheduled"]).dt.total_seconds().dropna().to_numpy() * 1000
    lag_pcts = hdr.percentiles_ms(hdr.of_values_ms(lag), (50.0, 99.0))
    return {
        "scheduled": int(df["scheduled"].notna().sum()),
        "started": int(df["started"].notna().sum()),
        "loaded": int((df["outcome"] == "loaded").sum()),
        "failed": int((df["outcome"] == "failed").sum()),
        "pending": int((df["outcome"] == "pending").sum()),
        "ws_connected": int(df["ws_connected"].notna().sum()),
        "lag_p50_ms": lag_pcts["p50_ms"],
        "lag_p99_ms": lag_pcts["p99_ms"],
        "lag_max_ms": lag_pcts["max_ms"],
        "time_to_loaded_p99_ms": hdr.percentiles_ms(hdr.of_values_ms(ttl), (99.0,))["p99_ms"],
    }


def request_measures(run_dir: Path, slos: SLOs) -> tuple[dict[str, Any], dict[str, Any]]:
    """From the request rows: error classes, login success, the successful logins' latency
    (through ``mmload.hdr``); (measures, details)."""
    t = record.read_table(run_dir, record.REQUESTS, ["name", "status", "latency_ms", "error"])
    keep = pc.invert(pc.is_in(t["name"], value_set=pa_strings(slos.exclude)))
    kept = t.filter(keep)
    n = kept.num_rows
    classes = error_classes(kept)
    login = t.filter(pc.equal(t["name"], LOGIN))
    ok = login.filter(pc.and_(pc.equal(login["status"], 200), pc.is_null(login["error"])))
    lat = kept["latency_ms"].to_numpy(zero_copy_only=False)
    ok_lat = ok["latency_ms"].to_numpy(zero_copy_only=False)
    measures = {
        "requests": n,
        "avg_ms": float(lat.mean()) if n else None,
        "error_rate": sum(classes.values()) / n if n else None,
        "login_success_rate": ok.num_rows / login.num_rows if login.num_rows else None,
        "login_p99_ms": hdr.percentiles_ms(hdr.of_values_ms(ok_lat), (99.0,))["p99_ms"],
        **slo.class_rates(classes, n),
    }
    failed_logins = slo.class_detail(error_classes(login))
    details = {
        "error_rate": slo.class_detail(classes),
        "login_success_rate": failed_logins and f"failed logins: {failed_logins}",
        "login_p99_ms": f"{ok.num_rows:,} successful of {login.num_rows:,}"
        if ok.num_rows != login.num_rows
        else None,
    }
    return {**measures, "classes": classes}, details


def error_classes(t: pa.Table) -> dict[str, int]:
    """Failed requests per error class (the classes of ``mmload.load.livestats.error_class``),
    counted column-wise: a run's millions of rows are never turned into Python objects."""
    status = t.filter(pc.is_valid(t["error"]))["status"].fill_null(0)
    counts = {
        "auth": _count(pc.is_in(status, value_set=pa.array([401, 403], type=status.type))),
        "rate_limited": _count(pc.equal(status, 429)),
        "server": _count(pc.and_(pc.greater_equal(status, 500), pc.less_equal(status, 599))),
        "transport": _count(pc.equal(status, 0)),
    }
    counts["other"] = len(status) - sum(counts.values())
    return {c: n for c, n in counts.items() if n}


def _count(mask: pa.ChunkedArray) -> int:
    return int(pc.sum(mask).as_py() or 0)


def first_error(run_dir: Path) -> str | None:
    """The earliest failed request, in words (for a run where nothing was answered)."""
    t = record.read_table(run_dir, record.REQUESTS, ["timestamp", "name", "error"])
    failed = t.filter(pc.is_valid(t["error"]))
    if failed.num_rows == 0:
        return None
    row = failed.take([pc.index(failed["timestamp"], pc.min(failed["timestamp"])).as_py()])
    return f"{row['name'][0].as_py()}: {row['error'][0].as_py()}"


def pa_strings(values: list[str]) -> pa.Array:
    """A pyarrow string array (for is_in filters)."""
    return pa.array(values, type=pa.string())


def summarize(run_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Everything ``mmload run`` prints and stores in run.json's totals and slos."""
    spec = (meta.get("scenario") or {}).get("spec") or {}
    slos = SLOs.model_validate(spec.get("slos") or {})
    pcts = hdr.run_percentiles(run_dir, exclude=slos.exclude)
    endpoints = endpoint_table(run_dir, pcts)
    requests = sum(r["count"] for r in endpoints)
    failures = sum(r["failures"] for r in endpoints)
    measures, details = request_measures(run_dir, slos)
    arrivals = arrival_stats(run_dir, "login")
    totals = {
        "requests": requests,
        "failures": failures,
        "error_rate": failures / requests if requests else None,
        "errors_by_class": measures.pop("classes"),
        "answered": answered(run_dir),
        "arrivals": arrivals,
        "reconnects": arrival_stats(run_dir, "reconnect"),
    }
    intervals = (meta.get("ceiling") or {}).get("intervals")
    if meta.get("scenario", {}).get("kind") == "ceiling" and intervals:
        verdicts = ceiling_verdicts(intervals, meta.get("supported_users"))
    else:
        client = {
            **measures,
            "p99_ms": pcts.overall["p99_ms"],
            "time_to_loaded_p99_ms": arrivals.get("time_to_loaded_p99_ms"),
        }
        verdicts = slo.evaluate(slos, client, server_side(meta, spec), details)
    return {"totals": totals, "endpoints": endpoints, "slos": verdicts}


def ceiling_verdicts(intervals: list[dict[str, Any]], supported: int | None) -> list[dict]:
    """A ceiling run is judged at its result: the last interval that held at the supported
    users (it passes), or, when no count held, the last interval measured (it fails)."""
    held = [i for i in intervals if i.get("held") and i.get("users") == supported]
    return (held or intervals)[-1]["verdicts"]


def answered(run_dir: Path) -> int:
    """Requests that got an HTTP answer (any status)."""
    t = record.read_table(run_dir, record.REQUESTS, ["status"])
    return int(pc.sum(pc.greater(t["status"], 0)).as_py() or 0) if t.num_rows else 0


def server_side(meta: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any] | None:
    """The server-side measures over the run's window (None without a Prometheus URL)."""
    url = (meta.get("parameters") or {}).get("prometheus")
    if not url:
        return None
    window = 60.0
    started, ended = meta.get("started_at"), meta.get("ended_at")
    if started and ended:
        a = datetime.fromisoformat(started.replace("Z", "+00:00"))
        b = datetime.fromisoformat(ended.replace("Z", "+00:00"))
        window = max(10.0, (b - a).total_seconds())
    queries = PromQueries.model_validate(spec.get("prometheus") or {})
    return prom.server_measures(url, queries, window)
