"""Live statistics on the master: per-second, per-endpoint latencies of the last minutes.

Read by the live view, the plain progress line and the ceiling loop (the SLOs of one interval).
Percentiles are read through ``mmload.hdr`` (the same rule as the run summary and the report).
"""

from __future__ import annotations

import math
import time
from array import array
from collections import Counter
from typing import Any

from mmload import hdr

LOGIN = "POST /api/v4/users/login"


def error_class(status: int, error: str | None) -> str | None:
    """A failed request's class: ``auth`` (401/403), ``rate_limited`` (429), ``server`` (5xx),
    ``transport`` (no answer: refused, reset, timeout) or ``other`` (None: no error)."""
    if error is None:
        return None
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limited"
    if 500 <= status <= 599:
        return "server"
    return "transport" if status == 0 else "other"


_NO_FAILURES = array("d")  # shared by the entries without a failure: never appended to
_NO_CLASSES: Counter[str] = Counter()


class _Entry:
    """One endpoint's requests in one second: latencies of successes and failures, classes.
    The failures' array and classes exist once there is one (10 minutes of entries for ~80
    endpoints: ~10 MiB less)."""

    __slots__ = ("classes", "failed", "ok")

    def __init__(self) -> None:
        self.ok = array("d")
        self.failed = _NO_FAILURES
        self.classes = _NO_CLASSES

    def add_failure(self, latency_ms: float, error_class: str) -> None:
        if self.failed is _NO_FAILURES:
            self.failed, self.classes = array("d"), Counter()
        self.failed.append(latency_ms)
        self.classes[error_class] += 1


class LiveStats:
    """Per-second, per-endpoint latencies of the last ``keep_s`` seconds (master side).

    Compact (8 bytes per request) so a 15,000-user storm fits; windows align to whole seconds.
    """

    def __init__(self, keep_s: float = 600.0):
        self.keep_s = keep_s
        self._secs: dict[int, dict[str, _Entry]] = {}
        self.total = 0
        self.failed = 0
        self.answered = 0  # requests that got an HTTP answer (status > 0)
        self.first_error: str | None = None
        self.arrived = 0
        self.loaded = 0
        self.arrivals_failed = 0
        self.ws_connected = 0
        self.login_started: set[str] = set()  # users that sent a login
        self.lag_ms: list[float] = []

    def add_requests(self, cols: dict[str, list]) -> None:
        """Add one batch of request rows."""
        statuses = cols.get("status") or [200] * len(cols["timestamp"])
        users = cols.get("user") or [None] * len(cols["timestamp"])
        for ts, name, lat, err, status, user in zip(
            cols["timestamp"],
            cols["name"],
            cols["latency_ms"],
            cols["error"],
            statuses,
            users,
            strict=True,
        ):
            per_name = self._secs.setdefault(ts // 1_000_000, {})
            entry = per_name.get(name)
            if entry is None:
                entry = per_name[name] = _Entry()
            status = int(status or 0)
            if err is None:
                entry.ok.append(lat)
            else:
                entry.add_failure(lat, error_class(status, err) or "other")
                self.failed += 1
                if self.first_error is None:
                    self.first_error = f"{name}: {err}"
            if status > 0:
                self.answered += 1
            if name == LOGIN and user is not None:
                self.login_started.add(user)
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
            if row.get("ws_connected") is not None:
                self.ws_connected += 1
            if row.get("lag_ms") is not None:
                self.lag_ms.append(row["lag_ms"])

    def lag_p99_ms(self) -> float | None:
        """p99 of the arrivals' lag behind the schedule (HDR)."""
        return hdr.percentiles_ms(hdr.of_values_ms(self.lag_ms), (99.0,))["p99_ms"]

    def window(
        self,
        t_from: float,
        t_to: float,
        exclude: tuple[str, ...] = (),
        only: str | None = None,
        ok_only: bool = False,
    ) -> dict[str, Any]:
        """count, errors, error_rate, classes, rps, avg_ms, p50_ms, p99_ms of the requests sent
        in the whole seconds inside [t_from, t_to); ``ok_only``: the successful ones only."""
        parts: list[array] = []
        errors = 0
        classes: Counter[str] = Counter()
        first, last = math.ceil(t_from), math.floor(t_to)
        for sec in range(first, last):
            for name, entry in self._secs.get(sec, {}).items():
                if name in exclude or (only is not None and name != only):
                    continue
                parts.append(entry.ok)
                if not ok_only:
                    parts.append(entry.failed)
                    errors += len(entry.failed)
                    classes.update(entry.classes)
        n = sum(len(p) for p in parts)
        span = max(1, last - first)
        out: dict[str, Any] = {
            "count": n,
            "errors": errors,
            "error_rate": errors / n if n else None,
            "classes": dict(classes),
            "rps": n / span,
            "avg_ms": sum(sum(p) for p in parts) / n if n else None,
            "p50_ms": None,
            "p99_ms": None,
        }
        if n:
            values = [v for p in parts for v in p]
            pcts = hdr.percentiles_ms(hdr.of_values_ms(values), (50.0, 99.0))
            out["p50_ms"], out["p99_ms"] = pcts["p50_ms"], pcts["p99_ms"]
        return out
