"""The run record: one directory per run, written by the load engine, read by the reporter.

Layout (see docs/run-record.md for the full contract)::

    run.json                  metadata, outcome, SLO verdicts, supported users
    requests.parquet          one row per request (compacted at the end of a run)
    requests/part-*.parquet   the same rows while the run is going (flushed at least every 5 s)
    arrivals.parquet | arrivals/part-*.parquet   one row per scheduled user arrival
    hdr.jsonl                 HDR histograms per endpoint per 10 s window per worker
                              (written and read only through mmload/hdr.py)
    prometheus.json           server-side time series of the run's window (optional)
    locust_*.csv              Locust's own CSV statistics

A run whose process died leaves ``outcome: running`` in run.json with a stale heartbeat; every
reader goes through :func:`read_run`, which reports such a run as ``interrupted``.
:class:`RunMeta` is run.json typed (with :class:`SloVerdict`), :func:`run_verdict` the one rule
that turns it into PASS / FAIL, and :class:`PromSnapshot` the contract of prometheus.json.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from mmload.config.loader import parse_json, read_text
from mmload.errors import UserError
from mmload.files import replace_via

RUN_JSON = "run.json"
REQUESTS = "requests"
ARRIVALS = "arrivals"
HDR_FILE = "hdr.jsonl"
SCHEMA_VERSION = "mmload.run/1"
WINDOW_S = 10
FLUSH_INTERVAL_S = 5.0
HEARTBEAT_STALE_S = 30.0
MAX_RUN_JSON_BYTES = 64 << 20  # run.json is KiBs (a long ceiling log: a few MiB)
MAX_PROMETHEUS_BYTES = 1 << 30

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


def iso_epoch(t: float) -> str:
    """Epoch seconds as :func:`iso` writes them."""
    return iso(datetime.fromtimestamp(t, UTC)) or ""


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
    text = json.dumps(meta, indent=2, default=str) + "\n"
    replace_via(
        run_dir / f".{RUN_JSON}.tmp",
        run_dir / RUN_JSON,
        lambda t: t.write_text(text, encoding="utf-8"),
    )


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
    try:
        beat_at = datetime.fromisoformat(str(beat).replace("Z", "+00:00")).timestamp()
    except ValueError:  # none, or not a time: nobody keeps this record alive
        return True
    return time.time() - beat_at > HEARTBEAT_STALE_S


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """Read run.json; a run whose writer died is reported with ``outcome: interrupted``."""
    path = Path(run_dir) / RUN_JSON
    if not path.exists() and not path.is_symlink():
        raise UserError("not a run record (no run.json)", source=str(run_dir))
    meta = parse_json(read_text(path, MAX_RUN_JSON_BYTES), str(path))
    if not isinstance(meta, dict):
        raise UserError("run.json is not a JSON object", source=str(path))
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
    """Write one part atomically (tmp + rename), so a crash never leaves a torn file (and a
    failed write, e.g. a full disk, no temporary one)."""
    dest = part_path(run_dir, table, worker, seq)
    replace_via(
        dest.with_suffix(".tmp"), dest, lambda t: pq.write_table(rows, t, compression="zstd")
    )
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
    """Merge the parts of ``table`` into ``<table>.parquet`` and remove the parts.

    The parts are removed only once the merged file is in place: a failed merge (a full disk)
    raises and leaves the parts as they were, readable by :func:`read_table`.
    """
    parts_dir = run_dir / table
    parts = sorted(parts_dir.glob("part-*.parquet")) if parts_dir.is_dir() else []
    dest = run_dir / f"{table}.parquet"
    schema = _schema_for(table)

    def merge(tmp: Path) -> None:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for p in parts:
                writer.write_table(pq.read_table(p, schema=schema))

    replace_via(dest.with_suffix(".tmp"), dest, merge)
    for p in parts:
        p.unlink()
    if parts_dir.is_dir():
        parts_dir.rmdir()
    return dest


# ---------------------------------------------------------------- typed run.json

VerdictStatus = Literal["pass", "fail", "unmeasured"]


class _Model(BaseModel):
    # run.json is written by several versions of the engine: unknown keys are kept, not refused
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class SloVerdict(_Model):
    """One SLO's verdict (run.json ``slos[]``): ``passed`` is true, false, or null (unmeasured)."""

    name: str
    description: str = ""
    source: str = "client"  # client | prometheus
    op: Literal["<", "<=", ">", ">="] = "<"
    threshold: float | None = None
    value: float | None = None
    passed: StrictBool | None = None
    optional: StrictBool = False  # an optional SLO that could not be measured does not fail a run
    detail: str | None = None  # what the value is made of, e.g. "failed logins: 134 429 …"

    @property
    def status(self) -> VerdictStatus:
        """``pass``, ``fail``, or ``unmeasured`` (no value: never a pass)."""
        if self.passed is None or self.value is None:
            return "unmeasured"
        return "pass" if self.passed else "fail"

    @property
    def fails_run(self) -> bool:
        """True when this verdict makes the run fail (failed, or unmeasured and not optional)."""
        return self.status == "fail" or (self.status == "unmeasured" and not self.optional)

    def sentence(self) -> str:
        """The verdict in words, e.g. ``login_p99_ms is 2,345 (must be < 2,000): p99 of …``."""
        what = f" ({self.description})" if self.description else ""
        limit = f"must be {self.op} {number(self.threshold)}"
        if self.status == "unmeasured":
            opt = " (optional)" if self.optional else ""
            return f"{self.name}{what} could not be measured{opt}: {limit}"
        verb = "passed" if self.status == "pass" else "failed"
        detail = f"; {self.detail}" if self.detail else ""
        return f"{self.name} {verb}: measured {number(self.value)}, {limit}{what}{detail}"


def number(value: float | None) -> str:
    """A measured value or threshold for a sentence: 2,345 / 0.0123 / 12.5."""
    if value is None:
        return "nothing"
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


class ScenarioRef(_Model):
    """Which scenario ran (run.json ``scenario``); ``spec`` is the validated scenario."""

    name: str | None = None
    kind: str | None = None
    file: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)


class CeilingInterval(_Model):
    """One measured interval of the ceiling loop."""

    users: int
    held: bool
    failing: list[str] = Field(default_factory=list)
    next_users: int | None = None
    verdicts: list[SloVerdict] = Field(default_factory=list)
    at: datetime | None = None


class CeilingLog(_Model):
    """run.json ``ceiling``: how the ceiling loop went."""

    converged: bool | None = None
    capped: bool | None = None
    intervals: list[CeilingInterval] = Field(default_factory=list)


class AbortFired(_Model):
    """The abort rule that ended an ``aborted`` run (run.json ``abort``)."""

    rule: str
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    for_s: float | None = None
    since: datetime | None = None
    at: datetime | None = None

    def sentence(self) -> str:
        """``aborted by error_rate above 0.2 for 30 s: 0.43 at 2026-...``."""
        value = "" if self.value is None else f": {self.metric} {self.value:.4g}"
        return f"aborted by the rule {self.rule}{value} at {iso(self.at) or '?'}"


class ArrivalCurve(_Model):
    """The requested arrival curve (run.json ``arrival_curve``; records before it have none):
    the arrivals the scenario's curve asks for in each ``window_s`` window from ``t0``, the
    first window's start (the schedule's origin), not rounded to users."""

    curve: str = "uniform"
    t0: datetime
    window_s: float = WINDOW_S
    requested: list[float] = Field(default_factory=list)

    def window_of(self, ts: datetime) -> int:
        """The window (0-based, negative before ``t0``) a time falls in."""
        return int((ts - self.t0).total_seconds() // self.window_s)


class RunMeta(_Model):
    """run.json, typed. Written by the load engine, read by every reader of a record."""

    schema_: str = Field(SCHEMA_VERSION, alias="schema")
    run_id: str | None = None
    scenario: ScenarioRef = Field(default_factory=ScenarioRef)
    parameters: dict[str, Any] = Field(default_factory=dict)
    target: str | None = None
    server_version: str | None = None
    licensed: bool | None = None  # the target reported a license (when the engine knows)
    label: str | None = None
    architecture: str | None = None
    tool_version: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: Literal["running", "completed", "interrupted", "failed", "aborted"] = "running"
    error: str | None = None
    abort: AbortFired | None = None  # outcome aborted: the rule that fired
    slos: list[SloVerdict] = Field(default_factory=list)
    supported_users: float | None = None
    totals: dict[str, Any] = Field(default_factory=dict)
    ceiling: CeilingLog | None = None
    arrival_curve: ArrivalCurve | None = None
    warnings: list[str] = Field(default_factory=list)
    interrupted_detected_by_reader: bool = False

    @field_validator("scenario", mode="before")
    @classmethod
    def _scenario_name(cls, v: Any) -> Any:
        if v is None:
            return {}
        return {"name": v} if isinstance(v, str) else v

    @field_validator("parameters", "totals", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v

    @property
    def scenario_kind(self) -> str | None:
        """storm, herd, steady, ceiling (or None for a record that does not say)."""
        return self.scenario.kind or self.scenario.spec.get("kind")

    def spec(self, *path: str) -> Any:
        """A value of the validated scenario spec, e.g. ``spec("herd", "settle_s")``."""
        node: Any = self.scenario.spec
        for key in path:
            if not isinstance(node, dict):
                return None
            node = node.get(key)
        return node


@dataclass(frozen=True)
class RunVerdict:
    """The run's verdict, the same for the engine's exit code and the report's banner.

    ``status``: ``PASS`` (completed, every SLO passed, optional unmeasured ones aside), ``FAIL``
    (an SLO failed or could not be measured, or the run did not complete), or ``NO SLOS``
    (completed, nothing to judge). ``reasons``: why it is not a PASS, in words.
    """

    status: Literal["PASS", "FAIL", "NO SLOS"]
    reasons: list[str]
    passed: list[SloVerdict]
    failed: list[SloVerdict]
    unmeasured: list[SloVerdict]

    @property
    def ok(self) -> bool:
        """False when a CI gate should fail."""
        return self.status != "FAIL"


def run_verdict(meta: RunMeta) -> RunVerdict:
    """Judge a run: failed SLOs, SLOs that could not be measured, an incomplete run."""
    failed = [s for s in meta.slos if s.status == "fail"]
    unmeasured = [s for s in meta.slos if s.status == "unmeasured"]
    passed = [s for s in meta.slos if s.status == "pass"]
    reasons = [s.sentence() for s in failed]
    reasons += [s.sentence() + " (not a pass)" for s in unmeasured if not s.optional]
    if meta.outcome == "aborted":
        reasons.append(meta.abort.sentence() if meta.abort else "the run was aborted")
    elif meta.outcome != "completed":
        why = f": {meta.error}" if meta.error else ""
        reasons.append(f"the run did not complete (outcome {meta.outcome}{why})")
    if reasons:
        status: Literal["PASS", "FAIL", "NO SLOS"] = "FAIL"
    else:
        status = "PASS" if meta.slos else "NO SLOS"
    return RunVerdict(status, reasons, passed, failed, unmeasured)


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_meta(meta: dict[str, Any], source: str) -> RunMeta:
    """run.json's dict as a RunMeta; a field of the wrong shape is a UserError naming it."""
    if not isinstance(meta, dict):
        raise UserError("run.json is not a JSON object", source=source)
    try:
        return RunMeta.model_validate(meta)
    except ValidationError as exc:
        e = exc.errors(include_url=False)[0]
        raise UserError(
            f"{e['msg']} (got {e.get('input')!r:.60})", source=source, field=_field_path(e["loc"])
        ) from None


def read_meta(run_dir: str | Path) -> RunMeta:
    """:func:`read_run`, typed."""
    return parse_meta(read_run(run_dir), str(Path(run_dir) / RUN_JSON))


# ---------------------------------------------------------------- prometheus.json

PROMETHEUS_FILE = "prometheus.json"
PROMETHEUS_SCHEMA = "mmload.prometheus/1"
# Panels the report knows by name (any other panel is drawn with its own title and unit).
PROMETHEUS_PANELS = {
    "app_cpu_percent": ("App server CPU", "%"),
    "db_connections": ("Database connections", "connections"),
    "api_p99_ms": ("API p99 by handler", "ms"),
}


class PromSeries(_Model):
    """One series of a Prometheus range query (``data.result[]`` of ``/api/v1/query_range``)."""

    metric: dict[str, str] = Field(default_factory=dict)
    values: list[tuple[float, str]] = Field(default_factory=list)  # [epoch s, "value"]


class PromPanel(_Model):
    """One named range query and its result, as Prometheus answered it."""

    query: str
    title: str | None = None
    unit: str | None = None
    result: list[PromSeries] = Field(default_factory=list)
    error: str | None = None  # why the query gave nothing (Prometheus' error text)


class PromSnapshot(_Model):
    """prometheus.json: the server-side time series of the run's window, kept in the record
    so the report stays offline."""

    schema_: str = Field(PROMETHEUS_SCHEMA, alias="schema")
    url: str | None = None
    start: datetime
    end: datetime
    step_s: float = Field(gt=0)
    panels: dict[str, PromPanel] = Field(default_factory=dict)


def write_prometheus(run_dir: Path, snapshot: PromSnapshot) -> Path:
    """Write prometheus.json atomically."""
    dest = run_dir / PROMETHEUS_FILE
    text = snapshot.model_dump_json(by_alias=True, indent=1) + "\n"
    replace_via(
        run_dir / f".{PROMETHEUS_FILE}.tmp", dest, lambda t: t.write_text(text, encoding="utf-8")
    )
    return dest


def read_prometheus(run_dir: str | Path) -> PromSnapshot | None:
    """prometheus.json of a record, or None when it has none."""
    path = Path(run_dir) / PROMETHEUS_FILE
    if not path.exists():
        return None
    doc = parse_json(read_text(path, MAX_PROMETHEUS_BYTES), str(path))
    try:
        return PromSnapshot.model_validate(doc)
    except ValidationError as exc:
        e = exc.errors(include_url=False)[0]
        raise UserError(e["msg"], source=str(path), field=_field_path(e["loc"])) from None
