"""Write the run record where the run is steered (the master, or the only process).

:class:`RecordWriter` takes the batches of every :class:`~mmload.load.collector.Collector`,
writes each as parquet parts and hdr.jsonl lines at once, keeps run.json's heartbeat fresh, keeps
:class:`~mmload.load.livestats.LiveStats` for the live view and the ceiling loop, and compacts
everything when the run ends.

HDR lines are written per flush (deltas), so a killed run keeps them; ``mmload.hdr.compact``
merges them into one line per (window, name, worker, kind) at the end. Merging is exact either
way.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import gevent
import pyarrow as pa
from gevent.threadpool import ThreadPool

from mmload import hdr, record
from mmload.load.collector import REQUEST_COLUMNS, Batch, Collector
from mmload.load.livestats import LiveStats

__all__ = ["Collector", "LiveStats", "RecordWriter"]  # Collector: for old imports

log = logging.getLogger(__name__)

ARRIVAL_COLUMNS = [f.name for f in record.ARRIVAL_SCHEMA]


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


def warm_up_timestamps() -> None:
    """pyarrow imports pandas the first time it builds a timestamp array: seconds of Python
    code holding the GIL. Paid before the schedule starts (see :meth:`RecordWriter.settle`)
    rather than during the first flush, where it stalls the users' greenlets (late arrivals)."""
    pa.array([0], type=record.REQUEST_SCHEMA.field("timestamp").type)


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
        self._warm_up = self._pool.spawn(warm_up_timestamps)  # first in the thread's queue
        self._pending: list[Any] = []
        self.login_users: set[str] = set()  # users with a login-phase arrival row
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
            self.login_users.update(
                row["user"] for row in batch["arrivals"] if row.get("phase", "login") == "login"
            )
        self._pending = [p for p in self._pending if not p.ready()]
        self._pending.append(self._pool.spawn(self._write, batch))

    def add_arrivals(self, worker: str, rows: list[dict[str, Any]]) -> None:
        """Arrival rows that no collector sent (e.g. the master's ``pending`` ones)."""
        empty = {c: [] for c in REQUEST_COLUMNS}
        self.ingest({"worker": worker, "requests": empty, "arrivals": rows, "hdr": []})

    def all_reported_since(self, t: float, workers: int) -> bool:
        """True when ``workers`` processes have each sent a batch after ``t`` (epoch)."""
        fresh = [w for w, at in self.last_batch_at.items() if at >= t and w != "master"]
        return len(fresh) >= max(1, workers)

    def settle(self) -> None:
        """Wait for the writer's one-time setup (started at creation, in its thread, so that it
        overlaps the workers' start): call it before the schedule starts."""
        self._warm_up.get()

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
