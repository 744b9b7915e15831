"""Turn an mmload run record into report tables (pure functions over arrow tables / frames).

Counts, errors and throughput come from the request rows (``requests``); latency percentiles
come from the HDR histograms (``hdr.jsonl``), merged exactly, never by averaging percentiles.
Everything is read through ``mmload.record``.
"""

from __future__ import annotations

import binascii
import math
import multiprocessing as mp
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mmload import hdr, record
from mmload.errors import UserError
from mmload.report.model import TIMING_COLUMNS, RunSummary

WINDOW_US = record.WINDOW_S * 1_000_000
REQUEST_COLUMNS = ["timestamp", "name", "status", "error", "latency_ms"]
PCT_COLUMNS = ["p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"]
PARALLEL_HDR_BYTES = 8_000_000  # hdr.jsonl above this is decoded in a helper process


@dataclass
class RunReport:
    """Everything `mmload report` shows for one run."""

    run_dir: str
    meta: dict[str, Any]
    endpoints: pd.DataFrame
    windows: pd.DataFrame
    endpoint_windows: pd.DataFrame
    errors: pd.DataFrame
    sev0: dict[str, Any] | None
    arrival_windows: pd.DataFrame | None
    slos: list[dict[str, Any]]
    histograms: dict[str, hdr.Sparse]
    duration_s: float
    notes: list[str] = field(default_factory=list)


def _parse_ts(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def request_table(run_dir: Path) -> pa.Table:
    """The request rows reduced to what the report needs: name (dictionary), window, flags."""
    t = record.read_table(
        run_dir, record.REQUESTS, columns=REQUEST_COLUMNS, dictionary=["name", "error"]
    )
    t = t.unify_dictionaries()  # row groups each carry their own dictionary
    ts_us = pc.cast(t["timestamp"], pa.int64())
    window = pc.multiply(pc.divide(ts_us, WINDOW_US), record.WINDOW_S)  # integer division
    name = t["name"]
    if not pa.types.is_dictionary(name.type):
        name = pc.dictionary_encode(name)
    return pa.table(
        {
            "name": name,
            "window": window,
            "ts_us": ts_us,
            "status": t["status"],
            "is_error": pc.is_valid(t["error"]),
            "is_429": pc.fill_null(pc.equal(t["status"], 429), False),
            "latency_ms": t["latency_ms"],
            "error": t["error"],
        }
    )


def run_span_s(meta: dict[str, Any], rows: pa.Table) -> float:
    """The run's duration: run.json start..end, else the first..last request."""
    start, end = _parse_ts(meta.get("started_at")), _parse_ts(meta.get("ended_at"))
    if start and end and end > start:
        return (end - start).total_seconds()
    if rows.num_rows:
        lo, hi = pc.min_max(rows["ts_us"]).values()
        return max((hi.as_py() - lo.as_py()) / 1e6, record.WINDOW_S)
    return 0.0


def _pct_frame(keys: list[Any], sparses: list[hdr.Sparse]) -> pd.DataFrame:
    return pd.DataFrame([hdr.percentiles_ms(s) for s in sparses], index=keys, columns=PCT_COLUMNS)


def endpoint_table(rows: pa.Table, idx: hdr.RunHistograms, duration_s: float) -> pd.DataFrame:
    """Per endpoint: count, errors, error rate, throughput, mean and HDR percentiles."""
    g = rows.group_by("name").aggregate(
        [("latency_ms", "count"), ("latency_ms", "sum"), ("is_error", "sum"), ("is_429", "sum")]
    )
    df = pd.DataFrame(
        {
            "name": g["name"].cast(pa.string()).to_pylist(),
            "count": g["latency_ms_count"].to_numpy(),
            "sum_ms": g["latency_ms_sum"].to_numpy(),
            "errors": g["is_error_sum"].to_numpy(),
            "status_429": g["is_429_sum"].to_numpy(),
        }
    )
    hdr_names = sorted({n for (k, n) in idx.by_name if k == "service"})
    names = sorted(set(df["name"]) | set(hdr_names))
    df = df.set_index("name").reindex(names)
    df[["count", "errors", "status_429"]] = df[["count", "errors", "status_429"]].fillna(0)
    df["error_rate"] = (df["errors"] / df["count"].where(df["count"] > 0)).fillna(0.0)
    df["rps"] = df["count"] / duration_s if duration_s > 0 else math.nan
    df["mean_ms"] = df["sum_ms"] / df["count"].where(df["count"] > 0)
    pcts = _pct_frame(names, [idx.by_name.get(("service", n), hdr.EMPTY) for n in names])
    df = df.join(pcts)
    corrected = [idx.by_name.get(("corrected", n)) for n in names]
    df["p99_corrected_ms"] = [hdr.percentiles_ms(s)["p99_ms"] if s else None for s in corrected]
    df = df.reset_index().rename(columns={"index": "name"})
    for col in ("count", "errors", "status_429"):
        df[col] = df[col].astype("int64")
    return df


def window_tables(
    rows: pa.Table, idx: hdr.RunHistograms, users: pd.Series | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per 10 s window (all endpoints) and per window and endpoint."""
    g = rows.group_by(["window", "name"]).aggregate([("latency_ms", "count"), ("is_error", "sum")])
    wn = pd.DataFrame(
        {
            "window_start": g["window"].to_numpy(),
            "name": g["name"].cast(pa.string()).to_pylist(),
            "count": g["latency_ms_count"].to_numpy(),
            "errors": g["is_error_sum"].to_numpy(),
        }
    )
    hdr_keys = {(w, n) for k, w, n in idx.by_window_name if k == hdr.SERVICE}
    keys = sorted(set(zip(wn["window_start"], wn["name"], strict=True)) | hdr_keys)
    wn = (
        wn.set_index(["window_start", "name"])
        .reindex(pd.MultiIndex.from_tuples(keys, names=["window_start", "name"]))
        .fillna(0)
    )
    pct = _pct_frame(keys, [idx.window(w, n) for w, n in keys])
    pct.index = wn.index
    wn = wn.join(pct[["p50_ms", "p95_ms", "p99_ms"]]).reset_index()
    wn["rps"] = wn["count"] / record.WINDOW_S
    w = wn.groupby("window_start", sort=True)[["count", "errors"]].sum()
    overall = idx.window_overall()
    w = w.join(_pct_frame(list(w.index), [overall.get(k, hdr.EMPTY) for k in w.index]))
    w["rps"] = w["count"] / record.WINDOW_S
    w["error_rate"] = (w["errors"] / w["count"].where(w["count"] > 0)).fillna(0.0)
    if users is not None:
        w["active_users"] = users.reindex(w.index)
    w = w.reset_index()
    w.insert(1, "time", pd.to_datetime(w["window_start"], unit="s", utc=True))
    for frame in (w, wn):
        frame[["count", "errors"]] = frame[["count", "errors"]].astype("int64")
    return w, wn


def error_table(rows: pa.Table) -> pd.DataFrame:
    """Errors by kind: endpoint, HTTP status (0 = no response) and message, most frequent first."""
    errs = rows.filter(rows["is_error"]).select(["name", "status", "error"])
    if errs.num_rows == 0:
        return pd.DataFrame(columns=["name", "status", "error", "count"])
    g = errs.group_by(["name", "status", "error"]).aggregate([("status", "count")])
    df = pd.DataFrame(
        {
            "name": g["name"].cast(pa.string()).to_pylist(),
            "status": g["status"].to_numpy(zero_copy_only=False),
            "error": g["error"].to_pylist(),
            "count": g["status_count"].to_numpy(),
        }
    )
    return df.sort_values(["count", "name"], ascending=[False, True], ignore_index=True)


def active_users(run_dir: Path) -> pd.Series | None:
    """Users running per window (max within the window) from Locust's stats history CSV."""
    path = run_dir / "locust_stats_history.csv"
    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path, usecols=["Timestamp", "User Count", "Name"])
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    df = df[df["Name"] == "Aggregated"]
    if df.empty:
        return None
    window = (df["Timestamp"].astype("int64") // record.WINDOW_S) * record.WINDOW_S
    return df.groupby(window)["User Count"].max().rename("active_users")


def _ms_percentiles(values: np.ndarray, prefix: str) -> dict[str, float | None]:
    """p50/p95/p99/max of raw ms values, read from their HDR histogram like every latency."""
    p = hdr.percentiles_ms(hdr.of_values_ms(values), (50.0, 95.0, 99.0))
    return {f"{prefix}_{k.removesuffix('_ms')}": v for k, v in p.items()}


def sev0_tables(
    run_dir: Path, endpoints: pd.DataFrame
) -> tuple[dict[str, Any] | None, pd.DataFrame | None]:
    """Login-storm specifics from the arrivals table; None when the run has no arrivals."""
    arr = record.read_table(run_dir, record.ARRIVALS)
    if arr.num_rows == 0:
        return None, None
    everyone = arr.to_pandas()
    phases = (
        everyone["phase"].fillna("login")
        if "phase" in everyone
        else pd.Series("login", index=everyone.index)
    )
    # the storm's figures are about scheduled logins; a reconnect herd alone is reported as is
    df = everyone[phases == "login"] if (phases == "login").any() else everyone
    n = len(df)
    sched = df["scheduled"]
    to_loaded = (df["loaded"] - sched).dt.total_seconds().dropna().to_numpy() * 1000.0
    to_login = (df["logged_in"] - sched).dt.total_seconds().dropna().to_numpy() * 1000.0
    logged_in = int(df["logged_in"].notna().sum())
    ws_ok = int(df["ws_connected"].notna().sum())
    outcomes = df["outcome"].fillna("pending").value_counts().to_dict()
    login = endpoints[endpoints["name"].str.contains("/users/login", regex=False)]
    summary: dict[str, Any] = {
        "arrivals": n,
        "scheduled_first": sched.min().isoformat() if n else None,
        "scheduled_last": sched.max().isoformat() if n else None,
        "started": int(df["started"].notna().sum()),
        "logged_in": logged_in,
        "loaded": int(df["loaded"].notna().sum()),
        "ws_connected": ws_ok,
        "ws_connect_success": ws_ok / logged_in if logged_in else None,
        "login_success": logged_in / n if n else None,
        "outcomes": {str(k): int(v) for k, v in outcomes.items()},
        "phases": {str(k): int(v) for k, v in phases.value_counts().items()},
        "login_requests": int(login["count"].sum()),
        "login_429": int(login["status_429"].sum()),
        "status_429": int(endpoints["status_429"].sum()),
        **_ms_percentiles(df["lag_ms"].dropna().to_numpy(), "lag_ms"),
        **_ms_percentiles(to_login, "to_login_ms"),
        **_ms_percentiles(to_loaded, "to_loaded_ms"),
    }
    by_window = (
        pd.DataFrame(
            {
                "scheduled": _per_window(sched),
                "started": _per_window(df["started"]),
                "loaded": _per_window(df["loaded"]),
            }
        )
        .fillna(0)
        .astype("int64")
        .sort_index()
    )
    by_window = by_window.reindex(
        range(int(by_window.index.min()), int(by_window.index.max()) + 1, record.WINDOW_S),
        fill_value=0,
    )
    for col in ("scheduled", "started", "loaded"):
        by_window[f"{col}_cum"] = by_window[col].cumsum()
    by_window.index.name = "window_start"
    by_window = by_window.reset_index()
    by_window.insert(1, "time", pd.to_datetime(by_window["window_start"], unit="s", utc=True))
    return summary, by_window


def _per_window(ts: pd.Series) -> pd.Series:
    secs = (ts.dropna() - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return ((secs // record.WINDOW_S) * record.WINDOW_S).value_counts()


def read_rows_and_histograms(run_dir: Path) -> tuple[pa.Table, hdr.RunHistograms]:
    """Decode hdr.jsonl in a second process while this one reads the rows (2 cores, ~2x).

    Small records (or a failure to start the helper process) are read one after the other.
    """
    hdr_file = run_dir / record.HDR_FILE
    if not hdr_file.exists() or hdr_file.stat().st_size < PARALLEL_HDR_BYTES:
        return request_table(run_dir), hdr.read_run(run_dir)
    try:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("fork"))
    except (OSError, ValueError):
        return request_table(run_dir), hdr.read_run(run_dir)
    with pool:
        future = pool.submit(hdr.read_run, run_dir)
        rows = request_table(run_dir)
        try:
            return rows, future.result()
        except BrokenProcessPool:
            return rows, hdr.read_run(run_dir)


@contextmanager
def unreadable_is_user_error(run_dir: Path) -> Iterator[None]:
    """A damaged parquet or histogram file becomes one line naming the record, not a traceback."""
    try:
        yield
    except (
        pa.ArrowException,
        OSError,
        ValueError,
        zlib.error,
        binascii.Error,
        KeyError,
    ) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"damaged run record: {detail}", source=str(run_dir)) from None


def build_run_report(run_dir: str | Path) -> RunReport:
    """Read a run record and compute every table of its report."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError("not a directory (expected a run record)", source=str(run_dir))
    meta = record.read_run(run_dir)
    with unreadable_is_user_error(run_dir):
        rows, idx = read_rows_and_histograms(run_dir)
    duration = run_span_s(meta, rows)
    notes = []
    if meta.get("outcome") != "completed":
        notes.append(f"run outcome is {meta.get('outcome')!r}: figures cover what was recorded")
    if rows.num_rows and not idx.lines:
        notes.append("hdr.jsonl is missing: no latency percentiles")
    endpoints = endpoint_table(rows, idx, duration)
    windows, endpoint_windows = window_tables(rows, idx, active_users(run_dir))
    with unreadable_is_user_error(run_dir):
        sev0, arrival_windows = sev0_tables(run_dir, endpoints)
    slos = meta.get("slos") or []
    return RunReport(
        run_dir=str(run_dir),
        meta=meta,
        endpoints=endpoints,
        windows=windows,
        endpoint_windows=endpoint_windows,
        errors=error_table(rows),
        sev0=sev0,
        arrival_windows=arrival_windows,
        slos=slos if isinstance(slos, list) else [],
        histograms={n: s for (k, n), s in idx.by_name.items() if k == "service"},
        duration_s=duration,
        notes=notes,
    )


def summary_of(
    rep: RunReport, architecture: str | None = None, label: str | None = None
) -> RunSummary:
    """The compare/ceiling view of a run report."""
    meta = rep.meta
    ep = rep.endpoints
    timings = pd.DataFrame(
        {
            "kind": "api",
            "name": ep["name"],
            "avg_ms": ep["mean_ms"],
            "p99_ms": ep["p99_ms"],
            "count": ep["count"],
            "sum_ms": ep["sum_ms"],
        },
        columns=TIMING_COLUMNS,
    )
    users = meta.get("supported_users")
    return RunSummary(
        source=rep.run_dir,
        kind="mmload",
        name=str(meta.get("run_id") or Path(rep.run_dir).name),
        architecture=architecture or meta.get("architecture") or None,
        label=label or meta.get("label") or meta.get("server_version") or None,
        supported_users=float(users) if isinstance(users, int | float) else None,
        started_at=_parse_ts(meta.get("started_at")),
        ended_at=_parse_ts(meta.get("ended_at")),
        outcome=meta.get("outcome"),
        timings=timings,
        histograms=rep.histograms,
        warnings=list(rep.notes),
    )
