"""The run record: one directory per run, written by the load engine, read by the reporter.

Layout (see docs/run-record.md for the full contract)::

    run.json                  metadata, outcome, SLO verdicts, supported users
    requests.parquet          one row per request (compacted at the end of a run)
    requests/part-*.parquet   the same rows while the run is going (flushed at least every 5 s)
    arrivals.parquet | arrivals/part-*.parquet   one row per scheduled user arrival
    hdr.jsonl                 HDR histograms per endpoint per 10 s window per worker
    locust_*.csv              Locust's own CSV statistics

A run whose process died leaves ``outcome: running`` in run.json with a stale heartbeat; every
reader goes through :func:`read_run`, which reports such a run as ``interrupted``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hdrh.histogram import HdrHistogram

from mmload.errors import UserError

RUN_JSON = "run.json"
REQUESTS = "requests"
ARRIVALS = "arrivals"
HDR_FILE = "hdr.jsonl"
SCHEMA_VERSION = "mmload.run/1"
WINDOW_S = 10
FLUSH_INTERVAL_S = 5.0
HEARTBEAT_STALE_S = 30.0

# HDR histograms record microseconds from 1 µs to 1 hour with 3 significant digits.
HDR_LOWEST_US = 1
HDR_HIGHEST_US = 3_600_000_000
HDR_DIGITS = 3

OUTCOMES = ("running", "completed", "interrupted", "failed")

_TS = pa.timestamp("us", tz="UTC")
REQUEST_SCHEMA = pa.schema(
    [
        ("timestamp", _TS),  # UTC start of the request
        ("scheduled", _TS),  # scheduled start (open-model arrivals); null where not scheduled
        ("name", pa.string()),  # endpoint template with method, e.g. "GET /api/v4/users/me"
        ("method", pa.string()),
        ("status", pa.int32()),  # HTTP status; 0 when no response (connection error, timeout)
        ("latency_ms", pa.float64()),  # service time: request sent -> response complete
        ("bytes", pa.int64()),
        ("error", pa.string()),  # null on success
        ("user", pa.string()),
        ("worker", pa.string()),
    ]
)
ARRIVAL_SCHEMA = pa.schema(
    [
        ("user", pa.string()),
        ("worker", pa.string()),
        ("scheduled", _TS),  # when the schedule said this user logs in
        ("started", _TS),  # when its first request was actually sent
        ("lag_ms", pa.float64()),  # started - scheduled
        ("logged_in", _TS),  # login answered 200 (null if it never did)
        ("loaded", _TS),  # the web app's initial load finished (null if it never did)
        ("ws_connected", _TS),  # WebSocket hello received (null if never)
        ("outcome", pa.string()),  # loaded | failed | pending
        ("error", pa.string()),
        ("phase", pa.string()),  # login (a scheduled arrival) | reconnect (the reconnect herd)
    ]
)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(ts: datetime | None) -> str | None:
    """ISO-8601 with a ``Z`` suffix, or None."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z") if ts else None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:40] or "run"


def new_run_dir(parent: str | Path, scenario: str, label: str | None = None) -> Path:
    """Create and return a fresh run directory inside ``parent``; never reuses an existing one."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    base = "-".join(_slug(p) for p in (stamp, scenario, label) if p)
    for n in range(1, 1000):
        candidate = parent / (base if n == 1 else f"{base}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise UserError("too many runs with the same name this second", source=str(parent))


def write_run_json(run_dir: Path, meta: dict[str, Any]) -> None:
    """Atomically (re)write run.json, stamping the writer's pid, host and a heartbeat."""
    meta = dict(meta)
    meta.setdefault("schema", SCHEMA_VERSION)
    meta.setdefault("pid", os.getpid())
    meta.setdefault("host", socket.gethostname())
    meta["heartbeat_at"] = iso(utc_now())
    tmp = run_dir / f".{RUN_JSON}.tmp"
    tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, run_dir / RUN_JSON)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _writer_is_dead(meta: dict[str, Any]) -> bool:
    """True when a 'running' record's writer is gone: dead pid here, or a stale heartbeat."""
    pid, host = meta.get("pid"), meta.get("host")
    if isinstance(pid, int) and host == socket.gethostname() and not _pid_alive(pid):
        return True
    beat = meta.get("heartbeat_at")
    if not beat:
        return True
    age = time.time() - datetime.fromisoformat(beat.replace("Z", "+00:00")).timestamp()
    return age > HEARTBEAT_STALE_S


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """Read run.json; a run whose writer died is reported with ``outcome: interrupted``."""
    path = Path(run_dir) / RUN_JSON
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("not a run record (no run.json)", source=str(run_dir)) from None
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg}", source=str(path)) from None
    if meta.get("outcome") == "running" and _writer_is_dead(meta):
        meta["outcome"] = "interrupted"
        meta["interrupted_detected_by_reader"] = True
    return meta


def part_path(run_dir: Path, table: str, worker: str, seq: int) -> Path:
    """Path of one flushed part file of ``table`` (``requests`` or ``arrivals``)."""
    d = run_dir / table
    d.mkdir(exist_ok=True)
    return d / f"part-{_slug(worker)}-{seq:06d}.parquet"


def write_part(run_dir: Path, table: str, worker: str, seq: int, rows: pa.Table) -> Path:
    """Write one part atomically (tmp + rename), so a crash never leaves a torn file."""
    dest = part_path(run_dir, table, worker, seq)
    tmp = dest.with_suffix(".tmp")
    pq.write_table(rows, tmp, compression="zstd")
    os.replace(tmp, dest)
    return dest


def _schema_for(table: str) -> pa.Schema:
    return REQUEST_SCHEMA if table == REQUESTS else ARRIVAL_SCHEMA


def read_table(
    run_dir: str | Path,
    table: str,
    columns: list[str] | None = None,
    dictionary: list[str] | None = None,
) -> pa.Table:
    """Read ``requests`` or ``arrivals``: the compacted file if present, else the parts.

    ``dictionary``: string columns to read dictionary-encoded from the compacted file (far
    faster and smaller for repetitive columns such as ``name``); parts are read as strings.
    """
    run_dir = Path(run_dir)
    schema = _schema_for(table)
    single = run_dir / f"{table}.parquet"
    if single.exists():
        return pq.read_table(single, columns=columns, read_dictionary=dictionary)
    parts = sorted((run_dir / table).glob("part-*.parquet")) if (run_dir / table).is_dir() else []
    if not parts:
        empty = schema.empty_table()
        return empty.select(columns) if columns else empty
    return pa.concat_tables(pq.read_table(p, columns=columns, schema=schema) for p in parts)


def compact(run_dir: Path, table: str) -> Path | None:
    """Merge the parts of ``table`` into ``<table>.parquet`` and remove the parts."""
    parts_dir = run_dir / table
    parts = sorted(parts_dir.glob("part-*.parquet")) if parts_dir.is_dir() else []
    dest = run_dir / f"{table}.parquet"
    schema = _schema_for(table)
    tmp = dest.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for p in parts:
            writer.write_table(pq.read_table(p, schema=schema))
    os.replace(tmp, dest)
    for p in parts:
        p.unlink()
    if parts_dir.is_dir():
        parts_dir.rmdir()
    return dest


def new_histogram() -> HdrHistogram:
    """An empty latency histogram in microseconds (1 µs .. 1 h, 3 significant digits)."""
    return HdrHistogram(HDR_LOWEST_US, HDR_HIGHEST_US, HDR_DIGITS)


def hdr_line(window_start: int, name: str, worker: str, kind: str, hist: HdrHistogram) -> str:
    """One hdr.jsonl line. ``kind`` is ``service`` or ``corrected`` (from the scheduled start)."""
    return json.dumps(
        {
            "window_start": window_start,
            "name": name,
            "worker": worker,
            "kind": kind,
            "count": hist.get_total_count(),
            "hist": hist.encode().decode("ascii"),
        }
    )


def iter_hdr(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    """Yield hdr.jsonl records with ``hist`` decoded; a torn last line (crash) is skipped."""
    path = Path(run_dir) / HDR_FILE
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            rec["hist"] = HdrHistogram.decode(rec["hist"].encode("ascii"))
            yield rec


def merge_histograms(hists: list[HdrHistogram]) -> HdrHistogram:
    """Exact merge: the sum of the counts of every bucket."""
    total = new_histogram()
    for h in hists:
        total.add(h)
    return total
