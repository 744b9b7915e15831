"""The end-of-run summary: totals, per-endpoint latency, arrivals vs schedule, SLO verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mmload import record
from mmload.config.scenario import SLOs
from mmload.load import slo

LOGIN = "POST /api/v4/users/login"


def _pcts(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"avg_ms": None, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "avg_ms": float(values.mean()),
        "p50_ms": float(np.percentile(values, 50, method="inverted_cdf")),
        "p99_ms": float(np.percentile(values, 99, method="inverted_cdf")),
        "max_ms": float(values.max()),
    }


def endpoint_table(run_dir: Path) -> list[dict[str, Any]]:
    """count, failures and latency percentiles per request name."""
    t = record.read_table(run_dir, record.REQUESTS, ["name", "latency_ms", "error"])
    if t.num_rows == 0:
        return []
    df = t.to_pandas()
    rows = []
    for name, g in df.groupby("name", sort=True):
        lat = g["latency_ms"].to_numpy()
        rows.append(
            {"name": name, "count": len(g), "failures": int(g["error"].notna().sum()), **_pcts(lat)}
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
    return {
        "scheduled": int(df["scheduled"].notna().sum()),
        "started": int(df["started"].notna().sum()),
        "loaded": int((df["outcome"] == "loaded").sum()),
        "failed": int((df["outcome"] == "failed").sum()),
        "pending": int((df["outcome"] == "pending").sum()),
        "ws_connected": int(df["ws_connected"].notna().sum()),
        "lag_p50_ms": float(np.percentile(lag, 50)) if lag.size else None,
        "lag_p99_ms": float(np.percentile(lag, 99)) if lag.size else None,
        "lag_max_ms": float(lag.max()) if lag.size else None,
        "time_to_loaded_p99_ms": float(np.percentile(ttl, 99)) if ttl.size else None,
    }


def client_measures(run_dir: Path, slos: SLOs) -> dict[str, Any]:
    """The client-side SLO measures over the whole run."""
    t = record.read_table(run_dir, record.REQUESTS, ["name", "latency_ms", "error"])
    if t.num_rows == 0:
        return {}
    keep = pc.invert(pc.is_in(t["name"], value_set=pa_strings(slos.exclude)))
    kept = t.filter(keep)
    lat = kept["latency_ms"].to_numpy(zero_copy_only=False)
    login = t.filter(pc.equal(t["name"], LOGIN))["latency_ms"].to_numpy(zero_copy_only=False)
    n = kept.num_rows
    failed = n - kept["error"].null_count
    stats = _pcts(lat)
    return {
        "p99_ms": stats["p99_ms"],
        "avg_ms": stats["avg_ms"],
        "error_rate": failed / n if n else None,
        "login_p99_ms": _pcts(login)["p99_ms"],
    }


def pa_strings(values: list[str]) -> pa.Array:
    """A pyarrow string array (for is_in filters)."""
    return pa.array(values, type=pa.string())


def summarize(run_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Everything ``mmload run`` prints and stores in run.json's totals and slos."""
    spec = (meta.get("scenario") or {}).get("spec") or {}
    slos = SLOs.model_validate(spec.get("slos") or {})
    endpoints = endpoint_table(run_dir)
    requests = sum(r["count"] for r in endpoints)
    failures = sum(r["failures"] for r in endpoints)
    totals = {
        "requests": requests,
        "failures": failures,
        "error_rate": failures / requests if requests else None,
        "arrivals": arrival_stats(run_dir, "login"),
        "reconnects": arrival_stats(run_dir, "reconnect"),
    }
    if meta.get("scenario", {}).get("kind") == "ceiling" and meta.get("ceiling", {}).get(
        "intervals"
    ):
        verdicts = meta["ceiling"]["intervals"][-1]["verdicts"]
    else:
        server = None
        if (meta.get("parameters") or {}).get("prometheus"):
            from mmload.config.scenario import PromQueries

            started = record.read_run(run_dir).get("started_at")
            window = 60.0
            if started and meta.get("ended_at"):
                from datetime import datetime

                a = datetime.fromisoformat(started.replace("Z", "+00:00"))
                b = datetime.fromisoformat(meta["ended_at"].replace("Z", "+00:00"))
                window = max(10.0, (b - a).total_seconds())
            queries = PromQueries.model_validate(spec.get("prometheus") or {})
            server = slo.server_measures(meta["parameters"]["prometheus"], queries, window)
        verdicts = slo.evaluate(slos, client_measures(run_dir, slos), server)
    return {"totals": totals, "endpoints": endpoints, "slos": verdicts}
