"""Turn an mmload run record into report tables (pure functions over arrow tables / frames).

Counts, errors and throughput come from one streaming pass over the request rows (batch by
batch, so memory does not grow with the run); every latency percentile comes from the HDR
histograms (``mmload.hdr``), merged exactly, never by averaging percentiles. Everything is read
through ``mmload.record`` and ``mmload.hdr``.

Time series are per 10 s window. Rates (requests/s, logins/s, errors/s) belong to the whole
window and are drawn at its middle; running totals (arrivals, users connected) are counted up to
the window's END and drawn there.
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
import pyarrow.parquet as pq

from mmload import hdr, record
from mmload.errors import UserError
from mmload.report.curve import curve_windows
from mmload.report.model import TIMING_COLUMNS, RunSummary

WINDOW_S = record.WINDOW_S
WINDOW_US = WINDOW_S * 1_000_000
REQUEST_COLUMNS = ["timestamp", "name", "status", "error", "latency_ms"]
PCT_COLUMNS = ["p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"]
PARALLEL_HDR_BYTES = 8_000_000  # hdr.jsonl above this is decoded in a helper process
BATCH_ROWS = 2_000_000
MAX_WINDOWS = 100_000  # a run.json window longer than this (~11 days) is not trusted for axes
LOGIN = "POST /api/v4/users/login"
WS_CONNECT = "WS /api/v4/websocket"

# Error classes of failed requests (by HTTP status; 0 = no response). Code 0 = no error.
ERROR_CLASSES = {
    1: ("auth", "4xx auth (401, 403)"),
    2: ("rate_limited", "429 rate limited"),
    3: ("client", "other 4xx"),
    4: ("server", "5xx"),
    5: ("transport", "transport (no response)"),
    6: ("other", "other (answered, but failed)"),
}


@dataclass
class RowAggregates:
    """What one pass over the request rows yields (small: windows x endpoints x classes)."""

    by_wnc: pd.DataFrame  # window_start, name, cls (0 ok, else ERROR_CLASSES), count, sum_ms
    errors: pd.DataFrame  # name, status, error, count (failed requests only)
    rows: int = 0
    ts_min_us: int | None = None
    ts_max_us: int | None = None


@dataclass
class RunReport:
    """Everything `mmload report` shows for one run."""

    run_dir: str
    meta: dict[str, Any]
    run: record.RunMeta
    verdict: record.RunVerdict
    endpoints: pd.DataFrame
    windows: pd.DataFrame
    endpoint_windows: pd.DataFrame
    errors: pd.DataFrame
    error_classes: dict[str, int]
    sev0: dict[str, Any] | None
    arrival_windows: pd.DataFrame | None
    reconnects: dict[str, Any] | None
    reconnect_windows: pd.DataFrame | None
    slos: list[dict[str, Any]]
    histograms: dict[str, hdr.Sparse]
    duration_s: float
    axis: tuple[datetime, datetime] | None  # the time range every time plot shares
    prometheus: record.PromSnapshot | None
    notes: list[str] = field(default_factory=list)
    curve_windows: pd.DataFrame | None = None  # requested vs started per curve window


def _parse_ts(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


# ---------------------------------------------------------------- the request rows


def _batches(run_dir: Path) -> Iterator[pa.RecordBatch]:
    """The request rows, batch by batch: the compacted file, else the flushed parts."""
    single = run_dir / f"{record.REQUESTS}.parquet"
    files = (
        [single]
        if single.exists()
        else sorted((run_dir / record.REQUESTS).glob("part-*.parquet"))
        if (run_dir / record.REQUESTS).is_dir()
        else []
    )
    for path in files:
        pf = pq.ParquetFile(path, read_dictionary=["name", "error"])
        yield from pf.iter_batches(batch_size=BATCH_ROWS, columns=REQUEST_COLUMNS)


def _class_table() -> np.ndarray:
    """ERROR_CLASSES code of a failed request by HTTP status (index: status 0..999)."""
    lut = np.full(1000, 6, dtype=np.int8)  # answered (1xx-3xx) but failed: other
    lut[0] = 5
    lut[400:500] = 3
    lut[[401, 403]] = 1
    lut[429] = 2
    lut[500:600] = 4
    return lut


CLASS_OF_STATUS = _class_table()
CLASSES = 8  # codes 0..6 fit in 3 bits
PACK = 1 << 24  # run-wide key: window_start * PACK + endpoint * CLASSES + class (< 2 M endpoints)


def error_class(status: np.ndarray, failed: np.ndarray) -> np.ndarray:
    """ERROR_CLASSES code of every row (0 for a request that did not fail)."""
    code = CLASS_OF_STATUS[np.clip(status, 0, 999)]
    return np.where(failed, code, 0).astype(np.int8)


class _Scan:
    """Running sums of one pass over the rows, keyed by (window, endpoint, error class)."""

    def __init__(self) -> None:
        self.names: dict[str, int] = {}
        self.keys: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.sums: list[np.ndarray] = []
        self.errors: list[pa.Table] = []
        self.rows = 0
        self.ts_min: int | None = None
        self.ts_max: int | None = None

    def add(self, b: pa.RecordBatch) -> None:
        """Count one batch: a bincount over a packed (window, name, class) key."""
        n = b.num_rows
        self.rows += n
        ts = pc.cast(b.column("timestamp"), pa.int64()).to_numpy(zero_copy_only=False)
        lo, hi = int(ts.min()), int(ts.max())
        self.ts_min = lo if self.ts_min is None else min(self.ts_min, lo)
        self.ts_max = hi if self.ts_max is None else max(self.ts_max, hi)
        name = b.column("name")
        if not pa.types.is_dictionary(name.type):
            name = pc.dictionary_encode(name)
        # this batch's dictionary codes -> run-wide endpoint numbers
        remap = np.array(
            [self.names.setdefault(str(v), len(self.names)) for v in name.dictionary.to_pylist()],
            dtype=np.int64,
        )
        codes = name.indices.to_numpy(zero_copy_only=False)
        failed = b.column("error").is_valid().to_numpy(zero_copy_only=False)
        status = b.column("status").fill_null(0).to_numpy(zero_copy_only=False)
        cls = error_class(status, failed)
        window = ts // WINDOW_US
        w0 = int(window.min())
        stride = max(len(self.names), 1) * CLASSES
        key = (window - w0) * stride + remap[codes] * CLASSES + cls
        latency = b.column("latency_ms").fill_null(0.0).to_numpy(zero_copy_only=False)
        count = np.bincount(key)
        total = np.bincount(key, weights=latency, minlength=len(count))
        nz = np.flatnonzero(count)
        # back to run-wide keys (window, name, class) that do not depend on the batch
        w, rest = np.divmod(nz, stride)
        self.keys.append((w + w0) * WINDOW_S * PACK + rest)
        self.counts.append(count[nz])
        self.sums.append(total[nz])
        if failed.any():
            errs = pa.table(
                {"name": name, "status": b.column("status"), "error": b.column("error")}
            ).filter(pa.array(failed))
            agg = errs.group_by(["name", "status", "error"]).aggregate([("status", "count")])
            self.errors.append(
                agg.set_column(0, "name", pc.cast(agg["name"], pa.string())).set_column(
                    2, "error", pc.cast(agg["error"], pa.string())
                )
            )

    def result(self) -> RowAggregates:
        """The sums as tables."""
        if not self.keys:
            empty = pd.DataFrame(
                {
                    "window_start": pd.Series(dtype="int64"),
                    "name": pd.Series(dtype="object"),
                    "cls": pd.Series(dtype="int8"),
                    "count": pd.Series(dtype="int64"),
                    "sum_ms": pd.Series(dtype="float64"),
                }
            )
            return RowAggregates(empty, pd.DataFrame(columns=["name", "status", "error", "count"]))
        keys = np.concatenate(self.keys)
        uniq, inverse = np.unique(keys, return_inverse=True)
        count = np.bincount(inverse, weights=np.concatenate(self.counts)).astype(np.int64)
        total = np.bincount(inverse, weights=np.concatenate(self.sums))
        window_start, rest = np.divmod(uniq, PACK)
        name_id, cls = np.divmod(rest, CLASSES)
        names = np.array(list(self.names), dtype=object)
        by = pd.DataFrame(
            {
                "window_start": window_start.astype(np.int64),
                "name": names[name_id] if len(names) else [],
                "cls": cls.astype(np.int8),
                "count": count,
                "sum_ms": total,
            }
        )
        return RowAggregates(by, self._error_table(), self.rows, self.ts_min, self.ts_max)

    def _error_table(self) -> pd.DataFrame:
        if not self.errors:
            return pd.DataFrame(columns=["name", "status", "error", "count"])
        e = pa.concat_tables(self.errors)
        e = e.group_by(["name", "status", "error"]).aggregate([("status_count", "sum")])
        return pd.DataFrame(
            {
                "name": e["name"].to_pylist(),
                "status": e["status"].to_numpy(zero_copy_only=False),
                "error": e["error"].to_pylist(),
                "count": e["status_count_sum"].to_numpy(),
            }
        ).sort_values(["count", "name"], ascending=[False, True], ignore_index=True)


def scan_requests(run_dir: Path) -> RowAggregates:
    """One streaming pass over the request rows: counts, latency sums, error classes."""
    scan = _Scan()
    for b in _batches(run_dir):
        if b.num_rows:
            scan.add(b)
    return scan.result()


def read_rows_and_histograms(run_dir: Path) -> tuple[RowAggregates, hdr.RunHistograms]:
    """Decode hdr.jsonl in a second process while this one scans the rows (2 cores, ~2x).

    Small records (or a failure to start the helper process) are read one after the other.
    """
    hdr_file = hdr.path_of(run_dir)
    if not hdr_file.exists() or hdr_file.stat().st_size < PARALLEL_HDR_BYTES:
        return scan_requests(run_dir), hdr.read_run(run_dir)
    try:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("fork"))
    except (OSError, ValueError):
        return scan_requests(run_dir), hdr.read_run(run_dir)
    with pool:
        future = pool.submit(hdr.read_run, run_dir)
        rows = scan_requests(run_dir)
        try:
            return rows, future.result()
        except BrokenProcessPool:
            return rows, hdr.read_run(run_dir)


# ---------------------------------------------------------------- tables


def run_span_s(run: record.RunMeta, rows: RowAggregates) -> float:
    """The run's duration: run.json start..end, else the first..last request."""
    if run.started_at and run.ended_at and run.ended_at > run.started_at:
        return (run.ended_at - run.started_at).total_seconds()
    if rows.ts_min_us is not None and rows.ts_max_us is not None:
        return max((rows.ts_max_us - rows.ts_min_us) / 1e6, WINDOW_S)
    return 0.0


def _pct_frame(keys: list[Any], sparses: list[hdr.Sparse]) -> pd.DataFrame:
    return pd.DataFrame([hdr.percentiles_ms(s) for s in sparses], index=keys, columns=PCT_COLUMNS)


def endpoint_table(rows: RowAggregates, h: hdr.RunHistograms, duration_s: float) -> pd.DataFrame:
    """Per endpoint: count, errors, error rate, 429s, throughput, mean and HDR percentiles."""
    by = rows.by_wnc
    g = by.assign(
        errors=by["count"].where(by["cls"] > 0, 0), status_429=by["count"].where(by["cls"] == 2, 0)
    )
    df = g.groupby("name")[["count", "sum_ms", "errors", "status_429"]].sum()
    names = sorted(set(df.index) | set(h.names(hdr.SERVICE)))
    df = df.reindex(names)
    df[["count", "errors", "status_429"]] = df[["count", "errors", "status_429"]].fillna(0)
    df["error_rate"] = (df["errors"] / df["count"].where(df["count"] > 0)).fillna(0.0)
    df["rps"] = df["count"] / duration_s if duration_s > 0 else np.nan
    df["mean_ms"] = df["sum_ms"] / df["count"].where(df["count"] > 0)
    df = df.join(_pct_frame(names, [h.endpoint(n) for n in names]))
    corrected = [h.by_name.get((hdr.CORRECTED, n)) for n in names]
    df["p99_corrected_ms"] = [hdr.percentiles_ms(s)["p99_ms"] if s else None for s in corrected]
    df.index.name = "name"
    df = df.reset_index()
    for col in ("count", "errors", "status_429"):
        df[col] = df[col].astype("int64")
    return df


def window_index(run: record.RunMeta, rows: RowAggregates, extra: list[int]) -> pd.Index:
    """Every 10 s window of the run (run.json start..end, widened to cover any data)."""
    starts = list(rows.by_wnc["window_start"].unique()) + extra
    lo = min(starts) if starts else None
    hi = max(starts) if starts else None
    if run.started_at and run.ended_at and run.ended_at >= run.started_at:
        a = int(run.started_at.timestamp()) // WINDOW_S * WINDOW_S
        last = max(math.ceil(run.ended_at.timestamp()) - 1, a)  # the end itself is not in
        b = int(last) // WINDOW_S * WINDOW_S
        if (b - a) / WINDOW_S < MAX_WINDOWS:
            lo = a if lo is None else min(lo, a)
            hi = b if hi is None else max(hi, b)
    if lo is None or hi is None:
        return pd.Index([], dtype="int64", name="window_start")
    if (hi - lo) / WINDOW_S >= MAX_WINDOWS:
        return pd.Index(sorted(set(starts)), dtype="int64", name="window_start")
    return pd.Index(
        range(int(lo), int(hi) + WINDOW_S, WINDOW_S), dtype="int64", name="window_start"
    )


def _per_window(by: pd.DataFrame, index: pd.Index, mask: pd.Series | None = None) -> pd.Series:
    sel = by if mask is None else by[mask]
    return sel.groupby("window_start")["count"].sum().reindex(index, fill_value=0).astype("int64")


def window_tables(
    rows: RowAggregates, h: hdr.RunHistograms, index: pd.Index
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per 10 s window (all endpoints, with error classes, logins, WebSocket connects) and per
    window and endpoint."""
    by = rows.by_wnc
    w = pd.DataFrame(index=index)
    w["count"] = _per_window(by, index)
    w["errors"] = _per_window(by, index, by["cls"] > 0)
    overall = h.window_overall()
    w = w.join(_pct_frame(list(index), [overall.get(k, hdr.EMPTY) for k in index]))
    w["rps"] = w["count"] / WINDOW_S
    w["error_rate"] = (w["errors"] / w["count"].where(w["count"] > 0)).fillna(0.0)
    for code, (key, _title) in ERROR_CLASSES.items():
        w[f"errors_{key}"] = _per_window(by, index, by["cls"] == code)
    login = by["name"] == LOGIN
    w["login_requests"] = _per_window(by, index, login)
    w["login_ok"] = _per_window(by, index, login & (by["cls"] == 0))
    w["login_failed"] = w["login_requests"] - w["login_ok"]
    ws = by["name"] == WS_CONNECT
    w["ws_connects"] = _per_window(by, index, ws & (by["cls"] == 0))
    w["ws_connect_failures"] = _per_window(by, index, ws & (by["cls"] > 0))
    for kind, suffix in ((hdr.SERVICE, ""), (hdr.CORRECTED, "_corrected")):
        lp = _pct_frame(list(index), [h.window(k, LOGIN, kind) for k in index])
        w[f"login_p50{suffix}_ms"] = lp["p50_ms"]
        w[f"login_p99{suffix}_ms"] = lp["p99_ms"]
    w = w.reset_index()
    w.insert(1, "time", pd.to_datetime(w["window_start"], unit="s", utc=True))

    g = by.assign(errors=by["count"].where(by["cls"] > 0, 0))
    wn = g.groupby(["window_start", "name"])[["count", "errors"]].sum()
    hdr_keys = {(ws_, n) for k, ws_, n in h.by_window_name if k == hdr.SERVICE}
    keys = sorted(set(wn.index) | hdr_keys)
    mi = pd.MultiIndex.from_tuples(keys, names=["window_start", "name"])
    wn = wn.reindex(mi).fillna(0)
    pct = _pct_frame(keys, [h.window(ws_, n) for ws_, n in keys])
    pct.index = mi
    wn = wn.join(pct[["p50_ms", "p95_ms", "p99_ms"]]).reset_index()
    wn["rps"] = wn["count"] / WINDOW_S
    wn[["count", "errors"]] = wn[["count", "errors"]].astype("int64")
    return w, wn


def spawned_users(run_dir: Path) -> pd.Series | None:
    """Users Locust had running per window (max within the window), from its history CSV."""
    path = run_dir / "locust_stats_history.csv"
    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path, usecols=["Timestamp", "User Count", "Name"])
        df = df[df["Name"] == "Aggregated"]
        window = (pd.to_numeric(df["Timestamp"]).astype("int64") // WINDOW_S) * WINDOW_S
        users = pd.to_numeric(df["User Count"], errors="coerce")
    except (ValueError, TypeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if df.empty:
        return None
    return users.groupby(window).max().rename("spawned_users")


# ---------------------------------------------------------------- arrivals


def _ms_percentiles(values: np.ndarray, prefix: str) -> dict[str, float | None]:
    """p50/p95/p99/max of raw ms values, read from their HDR histogram like every latency."""
    p = hdr.percentiles_ms(hdr.of_values_ms(values), (50.0, 95.0, 99.0))
    return {f"{prefix}_{k.removesuffix('_ms')}": v for k, v in p.items()}


def _window_of(ts: pd.Series) -> pd.Series:
    secs = (ts.dropna() - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return (secs // WINDOW_S) * WINDOW_S


def _count_by_window(ts: pd.Series, index: pd.Index) -> pd.Series:
    return _window_of(ts).value_counts().reindex(index, fill_value=0).astype("int64")


def read_arrivals(run_dir: Path) -> pd.DataFrame | None:
    """The arrivals table (with ``phase`` filled in), or None when the run has none."""
    arr = record.read_table(run_dir, record.ARRIVALS)
    if arr.num_rows == 0:
        return None
    df = arr.to_pandas()
    df["phase"] = df["phase"].fillna("login") if "phase" in df else "login"
    return df


def sev0_summary(df: pd.DataFrame, endpoints: pd.DataFrame) -> dict[str, Any]:
    """Login-storm figures of the login-phase arrivals."""
    n = len(df)
    sched = df["scheduled"]
    to_loaded = (df["loaded"] - sched).dt.total_seconds().dropna().to_numpy() * 1000.0
    to_login = (df["logged_in"] - sched).dt.total_seconds().dropna().to_numpy() * 1000.0
    logged_in = int(df["logged_in"].notna().sum())
    ws_ok = int((df["ws_connected"].notna() & df["logged_in"].notna()).sum())
    outcomes = df["outcome"].fillna("pending").value_counts().to_dict()
    login = endpoints[endpoints["name"] == LOGIN]
    return {
        "arrivals": n,
        "scheduled_first": sched.min().isoformat() if sched.notna().any() else None,
        "scheduled_last": sched.max().isoformat() if sched.notna().any() else None,
        "started": int(df["started"].notna().sum()),
        "logged_in": logged_in,
        "loaded": int(df["loaded"].notna().sum()),
        "failed": int((df["outcome"] == "failed").sum()),
        "ws_connected": ws_ok,
        "ws_connect_success": ws_ok / logged_in if logged_in else None,
        "login_success": logged_in / n if n else None,
        "outcomes": {str(k): int(v) for k, v in outcomes.items()},
        "login_requests": int(login["count"].sum()),
        "login_429": int(login["status_429"].sum()),
        "status_429": int(endpoints["status_429"].sum()),
        **_ms_percentiles(df["lag_ms"].dropna().to_numpy(), "lag_ms"),
        **_ms_percentiles(to_login, "to_login_ms"),
        **_ms_percentiles(to_loaded, "to_loaded_ms"),
    }


def arrival_windows(df: pd.DataFrame, index: pd.Index, connected: pd.Series) -> pd.DataFrame:
    """Per window: scheduled, started, logged in, loaded, failed, and their running totals at
    the window's end; users logged in and connected at the window's end."""
    failed_at = df["started"].where(df["started"].notna(), df["scheduled"])
    out = pd.DataFrame(
        {
            "scheduled": _count_by_window(df["scheduled"], index),
            "started": _count_by_window(df["started"], index),
            "logged_in": _count_by_window(df["logged_in"], index),
            "loaded": _count_by_window(df["loaded"], index),
            "failed": _count_by_window(failed_at[df["outcome"] == "failed"], index),
        },
        index=index,
    )
    for col in ("scheduled", "started", "logged_in", "loaded", "failed"):
        out[f"{col}_cum"] = out[col].cumsum()
    out["connected_users"] = connected.reindex(index).to_numpy()
    out = out.reset_index()
    out.insert(1, "time", pd.to_datetime(out["window_start"] + WINDOW_S, unit="s", utc=True))
    return out


def herd_drop_at(run: record.RunMeta, logins: pd.DataFrame) -> pd.Timestamp | None:
    """When the reconnect herd's outage dropped every WebSocket.

    ``herd.drop_at`` in run.json when the engine wrote it; else what the engine computes: the
    first scheduled login + the arrival window + the herd's settle time (scenario spec).
    """
    given = run.model_extra.get("herd", {}) if run.model_extra else {}
    if isinstance(given, dict) and given.get("drop_at"):
        ts = _parse_ts(given["drop_at"])
        return pd.Timestamp(ts) if ts else None
    arrival_s, settle_s = run.spec("arrival_s"), run.spec("herd", "settle_s")
    first = logins["scheduled"].min() if len(logins) else None
    if first is None or pd.isna(first) or arrival_s is None or settle_s is None:
        return None
    return first + pd.Timedelta(seconds=float(arrival_s) + float(settle_s))


def connected_users(
    logins: pd.DataFrame,
    reconnects: pd.DataFrame,
    drop_at: pd.Timestamp | None,
    index: pd.Index,
    spawned: pd.Series | None,
) -> tuple[pd.Series, pd.Series]:
    """Users logged in, and logged in with their WebSocket connected, at each window's end.

    +1 when a user's login succeeded (and, for the second, its socket said hello); in a herd,
    -1 for every socket the outage closed (at ``drop_at``, or when it opened if later: the
    engine closes it at once), +1 when it reconnected. Users Locust stopped are not in the
    record: where Locust's history is there, the curves are capped at its running users.
    """
    ends = pd.to_datetime(index + WINDOW_S, unit="s", utc=True)

    def upto(ts: pd.Series) -> np.ndarray:
        t = np.sort(ts.dropna().to_numpy(dtype="datetime64[us]"))
        return np.searchsorted(t, ends.to_numpy(dtype="datetime64[us]"), side="left")

    ok = logins[logins["logged_in"].notna()]
    logged = upto(ok["logged_in"])
    connected = upto(ok["ws_connected"]).astype(np.int64)
    if len(reconnects) and drop_at is not None:
        # the outage closes every user's socket at drop_at (or at once, for a user whose socket
        # only opened after it); the herd's reconnects open them again
        had = ok["ws_connected"].dropna()  # a user whose first socket never opened drops none
        drops = had.where(had > drop_at, drop_at)
        connected = connected - upto(drops) + upto(reconnects["ws_connected"])
    logged_s = pd.Series(logged, index=index, dtype="float64")
    conn_s = pd.Series(np.maximum(connected, 0), index=index, dtype="float64")
    if spawned is not None and spawned.notna().any():
        cap = spawned.reindex(index).ffill()
        logged_s = logged_s.where(cap.isna(), np.minimum(logged_s, cap))
        conn_s = conn_s.where(cap.isna(), np.minimum(conn_s, cap))
    return logged_s, conn_s


def reconnect_summary(rec: pd.DataFrame, drop_at: pd.Timestamp | None) -> dict[str, Any]:
    """The reconnect herd's figures."""
    n = len(rec)
    ok = int(rec["ws_connected"].notna().sum())
    to_conn = (rec["ws_connected"] - rec["scheduled"]).dt.total_seconds().dropna() * 1000.0
    out: dict[str, Any] = {
        "reconnects": n,
        "started": int(rec["started"].notna().sum()),
        "reconnected": ok,
        "failed": int((rec["outcome"] == "failed").sum()),
        "pending": int((rec["outcome"].fillna("pending") == "pending").sum()),
        "reconnect_success": ok / n if n else None,
        "drop_at": drop_at.isoformat() if drop_at is not None else None,
        "last_reconnected": rec["ws_connected"].max().isoformat() if ok else None,
        **_ms_percentiles(rec["lag_ms"].dropna().to_numpy(), "lag_ms"),
        **_ms_percentiles(to_conn.to_numpy(), "to_connected_ms"),
    }
    if drop_at is not None:
        since = (rec["ws_connected"] - drop_at).dt.total_seconds().dropna() * 1000.0
        out |= _ms_percentiles(since.to_numpy(), "drop_to_connected_ms")
    return out


def reconnect_windows(rec: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """Per window: reconnects due (backoff schedule), started, reconnected, failed; totals."""
    out = pd.DataFrame(
        {
            "scheduled": _count_by_window(rec["scheduled"], index),
            "started": _count_by_window(rec["started"], index),
            "reconnected": _count_by_window(rec["ws_connected"], index),
            "failed": _count_by_window(rec["started"][rec["outcome"] == "failed"], index),
        },
        index=index,
    )
    for col in ("scheduled", "started", "reconnected", "failed"):
        out[f"{col}_cum"] = out[col].cumsum()
    out = out.reset_index()
    out.insert(1, "time", pd.to_datetime(out["window_start"] + WINDOW_S, unit="s", utc=True))
    return out


# ---------------------------------------------------------------- the whole report


@contextmanager
def unreadable_is_user_error(run_dir: Path) -> Iterator[None]:
    """A damaged parquet or histogram file becomes one line naming the record, not a traceback."""
    try:
        yield
    except (pa.ArrowException, OSError, ValueError, zlib.error, binascii.Error, KeyError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"damaged run record: {detail}", source=str(run_dir)) from None


def _arrival_window_starts(df: pd.DataFrame | None) -> list[int]:
    if df is None:
        return []
    cols = [c for c in ("scheduled", "started", "logged_in", "loaded", "ws_connected") if c in df]
    out: list[int] = []
    for c in cols:
        w = _window_of(df[c])
        if len(w):
            out += [int(w.min()), int(w.max())]
    return out


def build_run_report(run_dir: str | Path) -> RunReport:
    """Read a run record and compute every table of its report."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError("not a directory (expected a run record)", source=str(run_dir))
    meta = record.read_run(run_dir)
    run = record.parse_meta(meta, str(run_dir / record.RUN_JSON))
    with unreadable_is_user_error(run_dir):
        rows, h = read_rows_and_histograms(run_dir)
        arrivals = read_arrivals(run_dir)
    prometheus = record.read_prometheus(run_dir)
    duration = run_span_s(run, rows)
    notes = []
    if run.outcome != "completed":
        notes.append(f"run outcome is {run.outcome!r}: figures cover what was recorded")
    if rows.rows == 0:
        notes.append("the record holds no requests: no request was sent or none was recorded")
    elif not h.lines:
        notes.append("hdr.jsonl is missing: no latency percentiles")
    endpoints = endpoint_table(rows, h, duration)
    index = window_index(run, rows, _arrival_window_starts(arrivals) + h.windows())
    windows, endpoint_windows = window_tables(rows, h, index)
    spawned = spawned_users(run_dir)
    windows["spawned_users"] = spawned.reindex(index).to_numpy() if spawned is not None else np.nan
    sev0 = aw = recon = rw = cw = None
    if arrivals is not None:
        logins = arrivals[arrivals["phase"] == "login"]
        herd = arrivals[arrivals["phase"] == "reconnect"]
        drop_at = herd_drop_at(run, logins) if len(herd) else None
        logged, connected = connected_users(logins, herd, drop_at, index, spawned)
        windows["logged_in_users"] = logged.to_numpy()
        windows["connected_users"] = connected.to_numpy()
        if len(logins):
            sev0 = sev0_summary(logins, endpoints)
            sev0["phases"] = {str(k): int(v) for k, v in arrivals["phase"].value_counts().items()}
            aw = arrival_windows(logins, index, connected)
            cw = curve_windows(run, logins)
        if len(herd):
            recon = reconnect_summary(herd, drop_at)
            rw = reconnect_windows(herd, index)
    slos = [s.model_dump(mode="json", exclude_defaults=False) for s in run.slos]
    axis = None
    if len(index):
        axis = (
            datetime.fromtimestamp(int(index[0]), UTC),
            datetime.fromtimestamp(int(index[-1]) + WINDOW_S, UTC),
        )
    return RunReport(
        run_dir=str(run_dir),
        meta=meta,
        run=run,
        verdict=record.run_verdict(run),
        endpoints=endpoints,
        windows=windows,
        endpoint_windows=endpoint_windows,
        errors=rows.errors,
        error_classes={
            key: int(rows.by_wnc.loc[rows.by_wnc["cls"] == code, "count"].sum())
            for code, (key, _) in ERROR_CLASSES.items()
        },
        sev0=sev0,
        arrival_windows=aw,
        reconnects=recon,
        reconnect_windows=rw,
        slos=slos,
        histograms={n: h.endpoint(n) for n in h.names(hdr.SERVICE)},
        duration_s=duration,
        axis=axis,
        prometheus=prometheus,
        notes=notes,
        curve_windows=cw,
    )


def summary_of(
    rep: RunReport, architecture: str | None = None, label: str | None = None
) -> RunSummary:
    """The compare/ceiling view of a run report."""
    run = rep.run
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
    requests = int(ep["count"].sum())
    errors = int(ep["errors"].sum())
    return RunSummary(
        source=rep.run_dir,
        kind="mmload",
        name=str(run.run_id or Path(rep.run_dir).name),
        architecture=architecture or run.architecture or None,
        label=label or run.label or run.server_version or None,
        supported_users=run.supported_users,
        started_at=run.started_at,
        ended_at=run.ended_at,
        outcome=run.outcome,
        timings=timings,
        histograms=rep.histograms,
        warnings=list(rep.notes),
        requests=requests,
        errors=errors,
        arrivals=(rep.sev0 or {}).get("arrivals"),
        logged_in=(rep.sev0 or {}).get("logged_in"),
        slos=list(run.slos),
        verdict=rep.verdict.status,
    )
