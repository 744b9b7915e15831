"""Synthetic run records written through mmload/record.py, for reporter tests and the benchmark.

The rows are realistic in shape (about 40 endpoint templates with their own log-normal latency,
10 s windows, several workers, 429s on login, connection errors) and the HDR histograms in
hdr.jsonl are built from exactly the same latencies as the rows (µs, rounded), so percentiles
computed from either must agree bucket for bucket.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from hdrh.histogram import HdrHistogram

from mmload import hdr, record

ENDPOINTS = [
    "POST /api/v4/users/login",
    "GET /api/v4/users/me",
    "GET /api/v4/users/me/teams",
    "GET /api/v4/users/me/teams/members",
    "GET /api/v4/users/me/preferences",
    "GET /api/v4/users/me/teams/{team_id}/channels",
    "GET /api/v4/users/me/teams/unread",
    "GET /api/v4/users/me/teams/{team_id}/channels/members",
    "GET /api/v4/users/{user_id}/teams/{team_id}/channels/categories",
    "GET /api/v4/channels/{channel_id}/posts",
    "POST /api/v4/posts",
    "GET /api/v4/posts/{post_id}/thread",
    "POST /api/v4/channels/members/me/view",
    "GET /api/v4/users/status/ids",
    "POST /api/v4/users/ids",
    "POST /api/v4/users/usernames",
    "GET /api/v4/config/client",
    "GET /api/v4/license/client",
    "GET /api/v4/plugins/webapp",
    "GET /api/v4/system/ping",
    "GET /api/v4/users/{user_id}/image",
    "GET /api/v4/channels/{channel_id}/stats",
    "GET /api/v4/channels/{channel_id}/members/me",
    "GET /api/v4/teams/{team_id}/channels/search",
    "POST /api/v4/teams/{team_id}/posts/search",
    "GET /api/v4/users/autocomplete",
    "POST /api/v4/users/search",
    "PUT /api/v4/users/me/preferences",
    "POST /api/v4/reactions",
    "GET /api/v4/users/{user_id}/threads",
    "POST /api/v4/files",
    "GET /api/v4/files/{file_id}/preview",
    "GET /api/v4/files/{file_id}/thumbnail",
    "GET /api/v4/teams",
    "GET /api/v4/roles/names",
    "POST /api/v4/channels/group",
    "POST /api/v4/channels/direct",
    "POST /api/v4/users/logout",
    "WS /api/v4/websocket",
    "WS ping",
]
LOGIN = ENDPOINTS[0]


def histogram_of(idx: np.ndarray) -> HdrHistogram:
    """An HdrHistogram whose counts are the occurrences of the given bucket indices."""
    h = hdr.new_histogram()
    counts = np.ctypeslib.as_array(h.counts)
    uniq, cnt = np.unique(idx, return_counts=True)
    counts[uniq] = cnt.astype(np.uint64)
    h.set_internal_tacking_values(int(uniq[0]), int(uniq[-1]), int(cnt.sum()))
    return h


@dataclass
class Spec:
    """What to generate."""

    rows: int = 20_000
    duration_s: int = 120
    workers: int = 2
    users: int = 200
    endpoints: int = 40
    seed: int = 7
    sev0: bool = True  # arrivals table, login rows with scheduled starts, some 429s
    outcome: str = "completed"
    supported_users: int | None = None
    architecture: str | None = "small-1app"
    label: str | None = "11.7.1"
    start: datetime = field(default_factory=lambda: datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC))
    latency_scale: float = 1.0  # multiplies every latency (a slower build)
    rows_per_part: int = 1_000_000
    compact: bool = True  # False: leave requests/part-*.parquet as a live run does
    slos: list[dict[str, Any]] | None = None


def default_slos() -> list[dict[str, Any]]:
    """One passing, one failing and one unmeasurable SLO."""
    return [
        {
            "name": "login_p99_ms",
            "description": "login p99",
            "source": "client",
            "op": "<",
            "threshold": 5000,
            "value": 812.0,
            "passed": True,
        },
        {
            "name": "error_rate",
            "description": "share of failed requests",
            "source": "client",
            "op": "<=",
            "threshold": 0.001,
            "value": 0.012,
            "passed": False,
        },
        {
            "name": "app_cpu_p95",
            "description": "app CPU",
            "source": "prometheus",
            "op": "<",
            "threshold": 80,
            "value": None,
            "passed": None,
        },
    ]


def _window_rows(
    rng: np.random.Generator,
    spec: Spec,
    n: int,
    w_start_us: int,
    names: list[str],
    weights: np.ndarray,
    mu: np.ndarray,
) -> dict[str, np.ndarray]:
    """The rows of one 10 s window as numpy columns."""
    ts = np.sort(rng.integers(w_start_us, w_start_us + record.WINDOW_S * 1_000_000, n))
    ni = rng.choice(len(names), size=n, p=weights)
    lat_ms = np.exp(rng.normal(mu[ni], 0.6)) * spec.latency_scale
    lat_us = np.maximum(np.rint(lat_ms * 1000).astype(np.int64), 1)
    status = np.full(n, 200, dtype=np.int32)
    r = rng.random(n)
    login = ni == 0
    if spec.sev0:
        status[login & (r < 0.08)] = 429
    status[(~login) & (r < 0.004)] = 500
    status[r > 0.9985] = 0
    worker = rng.integers(0, spec.workers, n)
    return {
        "ts": ts,
        "ni": ni,
        "lat_us": lat_us,
        "status": status,
        "worker": worker,
        "user": rng.integers(0, spec.users, n),
    }


def _error_text(status: np.ndarray) -> pa.Array:
    out = np.full(len(status), None, dtype=object)
    out[status == 429] = "HTTP 429: limit exceeded"
    out[status == 500] = "HTTP 500: api.context.internal_error"
    out[status == 0] = "ConnectionResetError: connection reset by peer"
    return pa.array(out, type=pa.string())


def _to_table(cols: dict[str, np.ndarray], names: list[str], spec: Spec) -> pa.Table:
    n = len(cols["ts"])
    name_arr = pa.DictionaryArray.from_arrays(
        pa.array(cols["ni"].astype(np.int32)), pa.array(names)
    )
    methods = pa.array([nm.split(" ", 1)[0] for nm in names])
    method_arr = pa.DictionaryArray.from_arrays(pa.array(cols["ni"].astype(np.int32)), methods)
    users = pa.array([f"user{i:05d}" for i in range(spec.users)])
    workers = pa.array([f"worker-{i}" for i in range(spec.workers)])
    ts = pa.array(cols["ts"], type=pa.timestamp("us", tz="UTC"))
    login = cols["ni"] == 0
    sched = np.where(login, cols["ts"] - 1500, 0)
    scheduled = pa.array(
        sched, type=pa.timestamp("us", tz="UTC"), mask=~login if spec.sev0 else np.ones(n, bool)
    )
    return pa.table(
        {
            "timestamp": ts,
            "scheduled": scheduled,
            "name": name_arr.cast(pa.string()),
            "method": method_arr.cast(pa.string()),
            "status": pa.array(cols["status"], type=pa.int32()),
            "latency_ms": pa.array(cols["lat_us"] / 1000.0),
            "bytes": pa.array(np.full(n, 512, dtype=np.int64)),
            "error": _error_text(cols["status"]),
            "user": pa.DictionaryArray.from_arrays(
                pa.array(cols["user"].astype(np.int32)), users
            ).cast(pa.string()),
            "worker": pa.DictionaryArray.from_arrays(
                pa.array(cols["worker"].astype(np.int32)), workers
            ).cast(pa.string()),
        },
        schema=record.REQUEST_SCHEMA,
    )


def _hdr_lines(
    cols: dict[str, np.ndarray], w_start_s: int, names: list[str], spec: Spec
) -> list[str]:
    """hdr.jsonl lines of one window: per endpoint and worker, service (and corrected) kinds."""
    lines = []
    key = cols["ni"].astype(np.int64) * spec.workers + cols["worker"]
    order = np.argsort(key, kind="stable")
    idx_all = hdr.bucket_index(cols["lat_us"])
    corr_all = hdr.bucket_index(cols["lat_us"] + 1500)  # login rows started 1.5 ms after schedule
    keys, starts = np.unique(key[order], return_index=True)
    bounds = [*starts[1:].tolist(), len(order)]
    for k, a, b in zip(keys.tolist(), starts.tolist(), bounds, strict=True):
        sel = order[a:b]
        ni, wi = divmod(k, spec.workers)
        worker = f"worker-{wi}"
        lines.append(
            hdr.line_of(w_start_s, names[ni], worker, "service", histogram_of(idx_all[sel]))
        )
        if spec.sev0 and ni == 0:
            lines.append(
                hdr.line_of(w_start_s, names[ni], worker, "corrected", histogram_of(corr_all[sel]))
            )
    return lines


def _arrivals(rng: np.random.Generator, spec: Spec, t0_us: int) -> pa.Table:
    n = spec.users
    span = spec.duration_s * 0.6 * 1e6
    sched = (t0_us + np.linspace(0, span, n)).astype(np.int64)
    lag = rng.exponential(40_000, n).astype(np.int64)
    started = sched + lag
    logged = started + rng.lognormal(12.5, 0.4, n).astype(np.int64)
    loaded = logged + rng.lognormal(14.0, 0.3, n).astype(np.int64)
    ws = loaded + 20_000
    failed = rng.random(n) < 0.05
    ts = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "user": pa.array([f"user{i:05d}" for i in range(n)]),
            "worker": pa.array([f"worker-{i % spec.workers}" for i in range(n)]),
            "scheduled": pa.array(sched, type=ts),
            "started": pa.array(started, type=ts),
            "lag_ms": pa.array(lag / 1000.0),
            "logged_in": pa.array(logged, type=ts, mask=failed),
            "loaded": pa.array(loaded, type=ts, mask=failed),
            "ws_connected": pa.array(ws, type=ts, mask=failed),
            "outcome": pa.array(np.where(failed, "failed", "loaded")),
            "error": pa.array(np.where(failed, "HTTP 429: limit exceeded", None), type=pa.string()),
            "phase": pa.array(np.full(n, "login")),
        },
        schema=record.ARRIVAL_SCHEMA,
    )


def make_record(run_dir: Path, spec: Spec | None = None) -> Path:
    """Write a complete run record (run.json, requests, arrivals, hdr.jsonl, Locust history)."""
    spec = spec or Spec()
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    names = ENDPOINTS[: spec.endpoints]
    weights = rng.dirichlet(np.ones(len(names)) * 2)
    mu = rng.uniform(np.log(3), np.log(400), len(names))
    t0_s = int(spec.start.timestamp()) // record.WINDOW_S * record.WINDOW_S
    n_windows = max(spec.duration_s // record.WINDOW_S, 1)
    per_window = np.full(n_windows, spec.rows // n_windows)
    per_window[: spec.rows % n_windows] += 1
    seq, pending, pending_rows = 0, [], 0
    with (run_dir / record.HDR_FILE).open("w", encoding="utf-8") as hdr_fh:
        for wi, n in enumerate(per_window.tolist()):
            w_start = t0_s + wi * record.WINDOW_S
            cols = _window_rows(rng, spec, n, w_start * 1_000_000, names, weights, mu)
            hdr_fh.write("\n".join(_hdr_lines(cols, w_start, names, spec)) + "\n")
            pending.append(_to_table(cols, names, spec))
            pending_rows += n
            if pending_rows >= spec.rows_per_part or wi == n_windows - 1:
                record.write_part(run_dir, record.REQUESTS, "gen", seq, pa.concat_tables(pending))
                seq, pending, pending_rows = seq + 1, [], 0
    if spec.compact:
        record.compact(run_dir, record.REQUESTS)
    if spec.sev0:
        record.write_part(
            run_dir, record.ARRIVALS, "gen", 0, _arrivals(rng, spec, t0_s * 1_000_000)
        )
        record.compact(run_dir, record.ARRIVALS)
    _locust_history(run_dir, t0_s, spec)
    end = datetime.fromtimestamp(t0_s + n_windows * record.WINDOW_S, UTC)
    start = datetime.fromtimestamp(t0_s, UTC)
    record.write_run_json(
        run_dir,
        {
            "run_id": run_dir.name,
            "scenario": {
                "name": "sev0-login-storm" if spec.sev0 else "steady",
                "kind": "sev0" if spec.sev0 else "steady",
            },
            "parameters": {"users": spec.users, "workers": spec.workers},
            "target": "http://127.0.0.1:1",
            "server_version": spec.label,
            "label": spec.label,
            "architecture": spec.architecture,
            "started_at": record.iso(start),
            "ended_at": record.iso(end - timedelta(microseconds=0)),
            "outcome": spec.outcome,
            "slos": default_slos() if spec.slos is None else spec.slos,
            "supported_users": spec.supported_users,
            "totals": {"requests": spec.rows},
        },
    )
    return run_dir


def _locust_history(run_dir: Path, t0_s: int, spec: Spec) -> None:
    """Locust's stats history CSV (only the columns the reporter reads, plus a few)."""
    with (run_dir / "locust_stats_history.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s"])
        for s in range(0, spec.duration_s, 2):
            users = min(spec.users, int(spec.users * s / max(spec.duration_s * 0.6, 1)) + 1)
            w.writerow([t0_s + s, users, "", "Aggregated", 0, 0])
