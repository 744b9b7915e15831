"""The end-of-run summary: totals, per-endpoint latency, arrivals vs schedule, SLO verdicts.

Counts, failures and means come from the request rows; every latency percentile comes from the
HDR histograms (``mmload.hdr.run_percentiles``), the same numbers ``mmload report`` prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mmload import hdr, record
from mmload.config.scenario import SLOs
from mmload.load import slo
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


def client_measures(run_dir: Path, slos: SLOs, pcts: hdr.RunPercentiles) -> dict[str, Any]:
    """The client-side SLO measures over the whole run (percentiles from ``pcts``)."""
    t = record.read_table(run_dir, record.REQUESTS, ["name", "latency_ms", "error"])
    if t.num_rows == 0:
        return {}
    keep = pc.invert(pc.is_in(t["name"], value_set=pa_strings(slos.exclude)))
    kept = t.filter(keep)
    lat = kept["latency_ms"].to_numpy(zero_copy_only=False)
    n = kept.num_rows
    failed = n - kept["error"].null_count
    return {
        "p99_ms": pcts.overall["p99_ms"],
        "avg_ms": float(lat.mean()) if n else None,
        "error_rate": failed / n if n else None,
        "login_p99_ms": pcts.endpoints.get(LOGIN, {}).get("p99_ms"),
    }


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
        verdicts = slo.evaluate(slos, client_measures(run_dir, slos, pcts), server)
    return {"totals": totals, "endpoints": endpoints, "slos": verdicts}
