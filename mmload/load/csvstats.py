"""Locust's own CSV statistics beside the run record (``locust_stats.csv`` and friends).

Locust's ``StatsCSVFileWriter`` rewrites the files every second while the run goes on (and
appends to ``locust_stats_history.csv``). When the run ends, its loop is stopped and the final
statistics are written once more through Locust's public ``StatsCSV`` API (``requests_csv``,
``failures_csv``, ``exceptions_csv``), so the files hold every request of the run.

Every write is guarded: Locust's loop runs inside :meth:`LocustCSV._loop`, which catches what it
raises (a full disk) instead of letting its greenlet die with a traceback; the first failure goes
to ``on_error`` (the record writer's, which fails the run) and the files are written no more.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from locust.stats import StatsCSV, StatsCSVFileWriter

PERCENTILES = [0.5, 0.9, 0.95, 0.99, 1.0]


class LocustCSV:
    """Locust's CSV files under ``prefix`` (``<prefix>_stats.csv`` …) for one environment."""

    def __init__(
        self,
        environment: Any,
        prefix: Path,
        on_error: Callable[[BaseException, str], None] | None = None,
    ):
        self.environment = environment
        self.prefix = prefix
        self.on_error = on_error
        self.failed = False
        self._writer = StatsCSVFileWriter(environment, PERCENTILES, str(prefix), full_history=True)
        self._greenlet: gevent.Greenlet | None = None

    def _failed(self, exc: BaseException) -> None:
        if not self.failed:
            self.failed = True
            if self.on_error is not None:
                self.on_error(exc, "writing Locust's CSV statistics")

    def _loop(self) -> None:
        try:
            self._writer.stats_writer()
        except Exception as exc:
            self._failed(exc)

    def start(self) -> None:
        """Rewrite the files every second in the background (Locust's own loop, guarded)."""
        self._greenlet = gevent.spawn(self._loop)

    def finish(self) -> None:
        """Stop the loop, close its files, and write the final statistics (unless a write
        failed already)."""
        if self._greenlet is not None:
            self._greenlet.kill(block=True)
            self._greenlet = None
        w = self._writer
        for fh in (
            w.requests_csv_filehandle,
            w.stats_history_csv_filehandle,
            w.failures_csv_filehandle,
            w.exceptions_csv_filehandle,
        ):
            try:
                fh.close()  # flushes: may fail as any write
            except Exception as exc:
                self._failed(exc)
        if self.failed:
            return
        final = StatsCSV(self.environment, PERCENTILES)
        for suffix, write in (
            ("_stats.csv", final.requests_csv),
            ("_failures.csv", final.failures_csv),
            ("_exceptions.csv", final.exceptions_csv),
        ):
            try:
                with Path(f"{self.prefix}{suffix}").open("w", newline="") as fh:
                    write(csv.writer(fh))
            except Exception as exc:
                self._failed(exc)
                return
