"""Live statistics on the master: per-second, per-endpoint latencies of the last minutes.

Read by the live view and by the ceiling loop (the SLOs of one interval).
"""

from __future__ import annotations

import math
import time
from array import array
from typing import Any


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


def _percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    k = max(0, min(len(sorted_values) - 1, int(-(-pct * len(sorted_values) // 100)) - 1))
    return sorted_values[k]
