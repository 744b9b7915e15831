"""One arrival of the run record's ``arrivals`` table: the only place its rows are built.

An arrival is a user's scheduled login (``phase: login``) or, in the reconnect herd, its
scheduled reconnect (``phase: reconnect``). Times are epoch seconds; the recorder turns them into
the table's timestamps (columns of :data:`mmload.record.ARRIVAL_SCHEMA`, less ``worker``, which
the collector adds).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

Phase = Literal["login", "reconnect"]
Outcome = Literal["pending", "loaded", "failed"]


@dataclass
class Arrival:
    """What happened to one scheduled arrival (``pending`` until it loaded or failed)."""

    user: str
    scheduled: float | None
    phase: Phase = "login"
    started: float | None = None
    lag_ms: float | None = None
    logged_in: float | None = None
    loaded: float | None = None
    ws_connected: float | None = None
    outcome: Outcome = "pending"
    error: str | None = None

    @classmethod
    def begin(cls, user: str, scheduled: float | None, now: float, phase: Phase = "login"):
        """An arrival whose first request is sent ``now`` (its lag measured from the schedule)."""
        lag_ms = (now - scheduled) * 1000 if scheduled is not None else None
        return cls(user, scheduled, phase, started=now, lag_ms=lag_ms)

    @property
    def lag_s(self) -> float | None:
        """Started minus scheduled, in seconds (None when not scheduled or not started)."""
        return None if self.lag_ms is None else self.lag_ms / 1000

    def fail(self, error: str) -> None:
        """The arrival ended without loading."""
        self.outcome = "failed"
        self.error = error[:200]

    def row(self) -> dict[str, Any]:
        """The arrivals-table row (without ``worker``)."""
        return dataclasses.asdict(self)
