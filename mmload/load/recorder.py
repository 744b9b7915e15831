"""Write the run record where the run is steered (the master, or the only process).

:class:`RecordWriter` takes the batches of every :class:`~mmload.load.collector.Collector`,
writes each as parquet parts and hdr.jsonl lines at once, keeps run.json's heartbeat fresh, keeps
:class:`~mmload.load.livestats.LiveStats` for the live view and the ceiling loop, and compacts
everything when the run ends.

HDR lines are written per flush (deltas), so a killed run keeps them; ``mmload.hdr.compact``
merges them into one line per (window, name, worker, kind) at the end. Merging is exact either
way.

A write that fails (a full disk, an I/O error) fails the run: the writer calls ``on_failure``
once with the reason (the runner stops arrivals and lets the users leave), writes nothing more,
keeps what is on disk (a torn hdr.jsonl line is cut off, no temporary file stays), and the final
run.json says ``failed``, why and when — written in the space of the :class:`Reserve` it held.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import pyarrow as pa
from gevent.threadpool import ThreadPool

from mmload import hdr, record
from mmload.load.collector import REQUEST_COLUMNS, Batch, Collector
from mmload.load.diskspace import Reserve
from mmload.load.livestats import LiveStats

__all__ = ["Collector", "LiveStats", "RecordWriter"]  # Collector: for old imports

log = logging.getLogger(__name__)

ARRIVAL_COLUMNS = [f.name for f in record.ARRIVAL_SCHEMA]
RESERVE_FILE = ".reserve"


def describe(exc: BaseException) -> str:
    """An exception in one line: its type and first line of message."""
    text = str(exc).splitlines()[0][:300] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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

    def __init__(
        self,
        run_dir: Path,
        meta: dict[str, Any],
        on_failure: Callable[[str], None] | None = None,
    ):
        self.run_dir = run_dir
        self.meta = meta
        self.on_failure = on_failure
        self.failure: str | None = None  # why writing the record failed (the first failure)
        self.failed_at: str | None = None
        self.live = LiveStats()
        self._seq: dict[str, int] = defaultdict(int)
        self._reserve = Reserve(run_dir / RESERVE_FILE)
        self._reserve.hold()
        self._hdr = os.open(hdr.path_of(run_dir), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
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

    def fail(self, exc: BaseException, what: str = "writing the run record") -> None:
        """Record the first failure of the record's writing and tell ``on_failure``; safe from
        the writer thread (it only sets attributes)."""
        if self.failure is not None:
            return
        self.failure = f"{what} failed: {describe(exc)}"
        self.failed_at = record.iso(record.utc_now())
        if self.on_failure is not None:
            self.on_failure(self.failure)

    def _write(self, batch: Batch) -> None:
        if self.failure is not None:  # the record stops where the disk stopped it
            return
        try:
            self._write_batch(batch)
        except Exception as exc:
            self.fail(exc)

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
        lines = [
            hdr.line(win, name, worker, kind, e, n) + "\n" for win, name, kind, e, n in batch["hdr"]
        ]
        if lines:
            self._append_hdr("".join(lines).encode())

    def _append_hdr(self, data: bytes) -> None:
        """Append whole lines to hdr.jsonl; a failed write cuts the file back to its last whole
        line (and raises)."""
        good = os.lseek(self._hdr, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._hdr, view) :]
        except OSError:
            os.ftruncate(self._hdr, good)
            raise

    def heartbeat(self) -> None:
        """Rewrite run.json with a fresh heartbeat."""
        record.write_run_json(self.run_dir, self.meta)

    def start_heartbeat(self, every_s: float = 5.0) -> None:
        """Keep run.json's heartbeat fresh while the run goes on."""

        def loop() -> None:
            while self.failure is None:
                gevent.sleep(every_s)
                try:
                    self.heartbeat()
                except Exception as exc:
                    self.fail(exc, "writing run.json")

        self._beat = gevent.spawn(loop)

    def finish(self, outcome: str, extra: dict[str, Any]) -> dict[str, Any]:
        """Compact the tables and HDR lines and write the final run.json (``failed``, with the
        reason and time, when writing the record failed; the compaction is then skipped)."""
        if self._beat is not None:
            self._beat.kill(block=True)
        self.drain()
        self._pool.kill()
        os.close(self._hdr)
        if self.failure is None:
            try:
                record.compact(self.run_dir, record.REQUESTS)
                record.compact(self.run_dir, record.ARRIVALS)
                hdr.compact(self.run_dir)
            except Exception as exc:  # the parts and lines stay as written
                self.fail(exc, "compacting the run record")
        self.meta.update(extra)
        self.meta["outcome"] = outcome
        if self.failure is not None:
            self.meta.update(outcome="failed", error=self.failure, failed_at=self.failed_at)
        self.meta["ended_at"] = record.iso(record.utc_now())
        self._reserve.release()
        record.write_run_json(self.run_dir, self.meta)
        return self.meta

    def abandon(self, exc: BaseException) -> str:
        """The end of the run broke (``exc``): run.json says ``failed`` with it, as far as the
        disk allows; the reserve is given back. The reason in words."""
        why = describe(exc)
        self.meta.update(outcome="failed", error=why, ended_at=record.iso(record.utc_now()))
        self.meta.setdefault("failed_at", self.meta["ended_at"])
        self._reserve.release()
        with contextlib.suppress(OSError):
            record.write_run_json(self.run_dir, self.meta)
        return why
