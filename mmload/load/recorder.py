"""Collect every request where it is made; write the run record where the run is steered.

- :class:`Collector` (every process that runs users) listens to Locust's ``request`` event and
  keeps the rows, the arrivals and HDR histograms (per endpoint, per 10 s window, service time and
  time from the scheduled start). Every ``flush_s`` it hands a batch to its sink: the local
  :class:`RecordWriter`, or the master through a Locust custom message.
- :class:`RecordWriter` (the master, or the only process) writes each batch as parquet parts and
  hdr.jsonl lines at once, keeps run.json's heartbeat fresh, keeps :class:`LiveStats` for the live
  view and the ceiling loop, and compacts everything when the run ends.

HDR lines are written per flush (deltas), so a killed run keeps them; ``mmload.hdr.compact`` merges
them into one line per (window, name, worker, kind) at the end. Merging is exact either way.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from array import array
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import pyarrow as pa
from gevent.threadpool import ThreadPool
from hdrh.histogram import HdrHistogram

from mmload import hdr, record

log = logging.getLogger(__name__)

REQUEST_COLUMNS = [f.name for f in record.REQUEST_SCHEMA]
ARRIVAL_COLUMNS = [f.name for f in record.ARRIVAL_SCHEMA]

Batch = dict[str, Any]


def _error_text(exception: Any) -> str | None:
    if exception is None:
        return None
    text = str(exception) or type(exception).__name__
    return text.splitlines()[0][:200] if text else type(exception).__name__


class Collector:
    """Buffers the requests and arrivals of one process and ships them every ``flush_s``."""

    def __init__(
        self, environment: Any, worker: str, sink: Callable[[Batch], None], flush_s: float
    ):
        self.environment = environment
        self.worker = worker
        self.sink = sink
        self.flush_s = flush_s
        self._buf: list[tuple] = []
        self._arrivals: list[dict[str, Any]] = []
        self._hists: dict[tuple[int, str, str], HdrHistogram] = {}
        self._greenlet: gevent.Greenlet | None = None
        environment.events.request.add_listener(self.on_request)

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        exception: Any = None,
        context: dict[str, Any] | None = None,
        start_time: float | None = None,
        response: Any = None,
        **_: Any,
    ) -> None:
        """Locust's request event: one row, plus the HDR histograms."""
        # the hot path of every request: one tuple, one or two histogram updates
        if context is None:
            context = {}
        start = start_time if start_time is not None else time.time() - response_time / 1000
        lag = context.get("lag_s")
        status = context["status"] if "status" in context else getattr(response, "status_code", 0)
        self._buf.append(
            (
                int(start * 1e6),
                None if lag is None else int((start - lag) * 1e6),
                name,
                request_type,
                int(status or 0),
                float(response_time),
                int(response_length or 0),
                None if exception is None else _error_text(exception),
                context.get("user"),
            )
        )
        win = int(start // record.WINDOW_S * record.WINDOW_S)
        key = (win, name, "service")
        h = self._hists.get(key)
        if h is None:
            h = self._hists[key] = hdr.new_histogram()
        us = int(response_time * 1000)
        h.record_value(us if us > 0 else 1)
        if lag is not None:
            self._hist(win, name, "corrected").record_value(max(1, int(lag * 1e6) + us))

    def _hist(self, win: int, name: str, kind: str) -> HdrHistogram:
        key = (win, name, kind)
        h = self._hists.get(key)
        if h is None:
            h = self._hists[key] = hdr.new_histogram()
        return h

    def add_arrival(self, row: dict[str, Any]) -> None:
        """One arrival row (columns of record.ARRIVAL_SCHEMA; times as epoch seconds)."""
        self._arrivals.append({**row, "worker": self.worker})

    def take_batch(self) -> Batch:
        """Everything collected since the last batch (and reset)."""
        buf, self._buf = self._buf, []
        columns = list(zip(*buf, strict=True)) if buf else [()] * (len(REQUEST_COLUMNS) - 1)
        rows = {c: list(col) for c, col in zip(REQUEST_COLUMNS[:-1], columns, strict=True)}
        rows["worker"] = [self.worker] * len(buf)
        arrivals, self._arrivals = self._arrivals, []
        hists, self._hists = self._hists, {}
        return {
            "worker": self.worker,
            "requests": rows,
            "arrivals": arrivals,
            "hdr": [
                [win, name, kind, hdr.encode(h), h.get_total_count()]
                for (win, name, kind), h in hists.items()
            ],
        }

    def flush(self) -> None:
        """Hand the current batch to the sink (even an empty one: it doubles as a heartbeat)."""
        try:
            self.sink(self.take_batch())
        except Exception:  # a failed flush must not kill the users
            log.exception("flushing the run record failed")

    def start(self) -> None:
        """Flush every ``flush_s`` seconds in the background."""

        def loop() -> None:
            while True:
                gevent.sleep(self.flush_s)
                self.flush()

        if self._greenlet is None:
            self._greenlet = gevent.spawn(loop)

    def stop(self) -> None:
        """Stop the background flushing and flush what is left."""
        if self._greenlet is not None:
            self._greenlet.kill(block=True)
            self._greenlet = None
        self.flush()
        with contextlib.suppress(ValueError):
            self.environment.events.request.remove_listener(self.on_request)


class LiveStats:
    """Per-second, per-endpoint latencies of the last ``keep_s`` seconds (master side).

    Compact (8 bytes per request) so a 15,000-user storm fits; windows align to whole seconds.
    """

    def __init__(self, keep_s: float = 600.0):
        self.keep_s = keep_s
        self._secs: dict[int, dict[str, list]] = {}  # second -> name -> [latencies, errors]
        self.total = 0
        self.failed = 0
        self.arrived = 0
        self.loaded = 0
        self.arrivals_failed = 0
        self.lag_ms: list[float] = []

    def add_requests(self, cols: dict[str, list]) -> None:
        """Add one batch of request rows."""
        for ts, name, lat, err in zip(
            cols["timestamp"], cols["name"], cols["latency_ms"], cols["error"], strict=True
        ):
            per_name = self._secs.setdefault(ts // 1_000_000, {})
            entry = per_name.get(name)
            if entry is None:
                entry = per_name[name] = [array("d"), 0]
            entry[0].append(lat)
            if err is not None:
                entry[1] += 1
                self.failed += 1
            self.total += 1
        cutoff = time.time() - self.keep_s
        for sec in [s for s in self._secs if s < cutoff]:
            del self._secs[sec]

    def add_arrivals(self, rows: list[dict[str, Any]]) -> None:
        """Count finished arrivals and their lag."""
        for row in rows:
            if row.get("phase", "login") != "login":
                continue
            self.arrived += 1
            if row.get("outcome") == "loaded":
                self.loaded += 1
            elif row.get("outcome") == "failed":
                self.arrivals_failed += 1
            if row.get("lag_ms") is not None:
                self.lag_ms.append(row["lag_ms"])

    def window(
        self, t_from: float, t_to: float, exclude: tuple[str, ...] = (), only: str | None = None
    ) -> dict[str, float | int | None]:
        """count, errors, error_rate, rps, avg_ms, p50_ms, p99_ms of the requests sent in the
        whole seconds inside [t_from, t_to)."""
        lats: list[float] = []
        errors = 0
        first, last = math.ceil(t_from), math.floor(t_to)
        for sec in range(first, last):
            for name, (values, errs) in self._secs.get(sec, {}).items():
                if name in exclude or (only is not None and name != only):
                    continue
                lats.extend(values)
                errors += errs
        n = len(lats)
        span = max(1, last - first)
        if not n:
            return {
                "count": 0,
                "errors": 0,
                "error_rate": None,
                "rps": 0.0,
                "avg_ms": None,
                "p50_ms": None,
                "p99_ms": None,
            }
        lats.sort()
        return {
            "count": n,
            "errors": errors,
            "error_rate": errors / n,
            "rps": n / span,
            "avg_ms": sum(lats) / n,
            "p50_ms": _percentile(lats, 50),
            "p99_ms": _percentile(lats, 99),
        }


def _percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    k = max(0, min(len(sorted_values) - 1, int(-(-pct * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def _to_table(cols: dict[str, list], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays(
        [pa.array(cols[f.name], type=f.type) for f in schema], schema=schema
    )


def _arrival_table(rows: list[dict[str, Any]]) -> pa.Table:
    cols: dict[str, list] = {c: [] for c in ARRIVAL_COLUMNS}
    for row in rows:
        for f in record.ARRIVAL_SCHEMA:
            v = row.get(f.name)
            if pa.types.is_timestamp(f.type) and v is not None:
                v = int(v * 1e6)
            cols[f.name].append(v)
    return _to_table(cols, record.ARRIVAL_SCHEMA)


class RecordWriter:
    """Writes the run record of one run directory as batches arrive."""

    def __init__(self, run_dir: Path, meta: dict[str, Any]):
        self.run_dir = run_dir
        self.meta = meta
        self.live = LiveStats()
        self._seq: dict[str, int] = defaultdict(int)
        self._hdr = hdr.path_of(run_dir).open("a", encoding="utf-8")
        self._beat: gevent.Greenlet | None = None
        self.batches: dict[str, int] = defaultdict(int)
        self.last_batch_at: dict[str, float] = {}
        self._pool = ThreadPool(1)
        self._pending: list[Any] = []
        record.write_run_json(run_dir, meta)

    def ingest(self, batch: Batch) -> None:
        """Update the live statistics now; write the batch in the writer thread.

        Files are written in one native thread (in arrival order), so parquet encoding never
        stalls the greenlets that keep arrivals on schedule.
        """
        worker = batch["worker"]
        self.batches[worker] += 1
        self.last_batch_at[worker] = time.time()
        if batch["requests"]["timestamp"]:
            self.live.add_requests(batch["requests"])
        if batch["arrivals"]:
            self.live.add_arrivals(batch["arrivals"])
        self._pending = [p for p in self._pending if not p.ready()]
        self._pending.append(self._pool.spawn(self._write, batch))

    def all_reported_since(self, t: float, workers: int) -> bool:
        """True when ``workers`` processes have each sent a batch after ``t`` (epoch)."""
        fresh = [w for w, at in self.last_batch_at.items() if at >= t and w != "master"]
        return len(fresh) >= max(1, workers)

    def drain(self) -> None:
        """Wait until every batch received so far is on disk."""
        for p in self._pending:
            p.get()
        self._pending = []

    def _write(self, batch: Batch) -> None:
        try:
            self._write_batch(batch)
        except Exception:
            log.exception("writing a batch of the run record failed")

    def _write_batch(self, batch: Batch) -> None:
        worker = batch["worker"]
        reqs = batch["requests"]
        if reqs["timestamp"]:
            self._seq[worker] += 1
            table = _to_table(reqs, record.REQUEST_SCHEMA)
            record.write_part(self.run_dir, record.REQUESTS, worker, self._seq[worker], table)
        if batch["arrivals"]:
            self._seq[worker + "-a"] += 1
            table = _arrival_table(batch["arrivals"])
            record.write_part(
                self.run_dir, record.ARRIVALS, worker, self._seq[worker + "-a"], table
            )
        for win, name, kind, encoded, count in batch["hdr"]:
            self._hdr.write(hdr.line(win, name, worker, kind, encoded, count) + "\n")
        self._hdr.flush()

    def heartbeat(self) -> None:
        """Rewrite run.json with a fresh heartbeat."""
        record.write_run_json(self.run_dir, self.meta)

    def start_heartbeat(self, every_s: float = 5.0) -> None:
        """Keep run.json's heartbeat fresh while the run goes on."""

        def loop() -> None:
            while True:
                gevent.sleep(every_s)
                self.heartbeat()

        self._beat = gevent.spawn(loop)

    def finish(self, outcome: str, extra: dict[str, Any]) -> dict[str, Any]:
        """Compact the tables and HDR lines and write the final run.json."""
        if self._beat is not None:
            self._beat.kill(block=True)
        self.drain()
        self._pool.kill()
        self._hdr.close()
        record.compact(self.run_dir, record.REQUESTS)
        record.compact(self.run_dir, record.ARRIVALS)
        hdr.compact(self.run_dir)
        self.meta.update(extra)
        self.meta["outcome"] = outcome
        self.meta["ended_at"] = record.iso(record.utc_now())
        record.write_run_json(self.run_dir, self.meta)
        return self.meta
