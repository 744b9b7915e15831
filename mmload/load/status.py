"""What a run is doing now, for the live view (and any other progress display).

The runner, the phase drivers and the ceiling loop write :class:`RunStatus`; displays read one
immutable :class:`Snapshot` of it and nothing else of the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mmload.load.livestats import LiveStats
from mmload.load.schedule import ArrivalSchedule

RECENT_S = (12.0, 2.0)  # the "recent" window: from 12 s to 2 s ago (batches arrive every 2 s)


@dataclass(frozen=True)
class ArrivalProgress:
    """Scheduled arrivals so far."""

    due: int
    total: int
    arrived: int  # finished their login flow (loaded or failed)
    loaded: int
    failed: int
    lag_p99_ms: float | None
    started: int = 0  # sent their login


@dataclass(frozen=True)
class CeilingProgress:
    """Where the ceiling loop is."""

    target_users: int
    step: int
    last_held: bool | None = None  # None: no interval measured yet
    last_failing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """One moment of a run, everything a display shows."""

    scenario: str
    kind: str
    target: str
    run_dir: Path
    phase: str
    elapsed_s: float
    expected_s: float | None  # the run's planned length (None: not known)
    users_spawned: int
    arrivals: ArrivalProgress | None
    ceiling: CeilingProgress | None
    recent_rps: float
    recent_p50_ms: float | None
    recent_p99_ms: float | None
    requests: int
    errors: int
    recent_error_rate: float | None = None
    websockets: int = 0  # arrivals whose WebSocket said hello

    @property
    def eta_s(self) -> float | None:
        """Seconds left by the plan (None: not known)."""
        if self.expected_s is None:
            return None
        return max(0.0, self.expected_s - self.elapsed_s)


@dataclass
class RunStatus:
    """The run's current state; :meth:`snapshot` freezes it."""

    scenario: str
    kind: str
    target: str
    run_dir: Path
    started: float
    live: LiveStats
    exclude: tuple[str, ...] = ()  # request names left out of the recent latencies
    phase: str = "starting"
    t0: float | None = None  # the first scheduled arrival (epoch)
    schedule: ArrivalSchedule | None = None
    ceiling: CeilingProgress | None = None
    users_spawned: Callable[[], int] = field(default=lambda: 0)
    expected_s: float | None = None  # planned length from the start of the schedule

    def snapshot(self, now: float) -> Snapshot:
        """The status at epoch ``now``."""
        live = self.live
        recent = live.window(now - RECENT_S[0], now - RECENT_S[1], self.exclude)
        return Snapshot(
            scenario=self.scenario,
            kind=self.kind,
            target=self.target,
            run_dir=self.run_dir,
            phase=self.phase,
            elapsed_s=now - self.started,
            expected_s=self._expected(),
            users_spawned=self.users_spawned(),
            arrivals=self._arrivals(now),
            ceiling=self.ceiling,
            recent_rps=float(recent["rps"] or 0.0),
            recent_p50_ms=recent["p50_ms"],
            recent_p99_ms=recent["p99_ms"],
            requests=live.total,
            errors=live.failed,
            recent_error_rate=recent["error_rate"],
            websockets=live.ws_connected,
        )

    def _expected(self) -> float | None:
        if self.expected_s is None:
            return None
        lead = (self.t0 - self.started) if self.t0 is not None else 0.0
        return lead + self.expected_s

    def _arrivals(self, now: float) -> ArrivalProgress | None:
        if self.schedule is None or self.t0 is None or not self.schedule.users:
            return None
        live = self.live
        return ArrivalProgress(
            due=self.schedule.due(now - self.t0),
            total=self.schedule.users,
            arrived=live.arrived,
            loaded=live.loaded,
            failed=live.arrivals_failed,
            lag_p99_ms=live.lag_p99_ms(),
            started=len(live.login_started),
        )
