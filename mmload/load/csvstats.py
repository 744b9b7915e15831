"""Locust's own CSV statistics beside the run record (``locust_stats.csv`` and friends).

Locust's ``StatsCSVFileWriter`` rewrites the files every second while the run goes on (and
appends to ``locust_stats_history.csv``). When the run ends, its loop is stopped and the final
statistics are written once more through Locust's public ``StatsCSV`` API (``requests_csv``,
``failures_csv``, ``exceptions_csv``), so the files hold every request of the run.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import gevent
from locust.stats import StatsCSV, StatsCSVFileWriter

log = logging.getLogger(__name__)

PERCENTILES = [0.5, 0.9, 0.95, 0.99, 1.0]


class LocustCSV:
    """Locust's CSV files under ``prefix`` (``<prefix>_stats.csv`` …) for one environment."""

    def __init__(self, environment: Any, prefix: Path):
        self.environment = environment
        self.prefix = prefix
        self._writer = StatsCSVFileWriter(environment, PERCENTILES, str(prefix), full_history=True)
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        """Rewrite the files every second in the background (Locust's own loop)."""
        self._greenlet = gevent.spawn(self._writer.stats_writer)

    def finish(self) -> None:
        """Stop the loop, close its files, and write the final statistics."""
        if self._greenlet is not None:
            self._greenlet.kill(block=True)
            self._greenlet = None
        self._writer.close_files()
        final = StatsCSV(self.environment, PERCENTILES)
        for suffix, write in (
            ("_stats.csv", final.requests_csv),
            ("_failures.csv", final.failures_csv),
            ("_exceptions.csv", final.exceptions_csv),
        ):
            path = Path(f"{self.prefix}{suffix}")
            try:
                with path.open("w", newline="") as fh:
                    write(csv.writer(fh))
            except OSError:
                log.warning("could not write %s", path, exc_info=True)
