"""The phase drivers: how the user count moves through a scenario's phases over time.

A driver knows nothing of Locust or processes. It sees a :class:`Phases` — a clock, a
``set_users(count, spawn_rate)`` function, the run's stop flag and status, and a ``tick`` called
while it waits (the live view, the worker watch) — so it runs on a fake clock in tests exactly as
it runs on the wall clock in a run. Each returns when its last phase ends or the run stops.

Users arrive by the plan (each sleeps until its scheduled slot), so a driver starts them all at
once and waits: ``storm`` and ``steady`` (arrivals, then hold), ``herd`` (arrivals, settle, the
outage and the reconnects, then hold). The ceiling loop lives beside its controller in
:mod:`mmload.load.ceiling`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mmload.config.scenario import Scenario
from mmload.errors import UserError
from mmload.load.clock import WALL, Clock
from mmload.load.context import StopFlag
from mmload.load.curves import peak_rate
from mmload.load.schedule import ArrivalSchedule, Backoff, arrival_schedule, herd_offsets
from mmload.load.status import RunStatus

SetUsers = Callable[[int, float], None]
HERD_SAMPLE = 500  # simulated clients whose latest reconnect bounds the herd phase
HERD_MARGIN_S = 2.0  # after the latest reconnect, for its reload to finish


def spawn_rate(users: int, over_s: float, peak_per_s: float = 0.0) -> float:
    """Spawn everyone well before their slots: 4x the mean arrival rate and 2x the curve's
    peak, at least 50/s."""
    return max(50.0, 4.0 * users / max(1.0, over_s), 2.0 * peak_per_s)


@dataclass
class Phases:
    """What a phase driver drives (see the module docstring)."""

    set_users: SetUsers
    stop: StopFlag
    status: RunStatus
    clock: Clock = WALL
    tick: Callable[[], None] = field(default=lambda: None)
    poll_s: float = 0.5

    def enter(self, phase: str) -> None:
        """Start ``phase`` (shown by the live view)."""
        self.status.phase = phase

    def now(self) -> float:
        return self.clock.time()

    def wait_until(self, t: float) -> bool:
        """Wait until epoch ``t``, ticking; False as soon as the run is asked to stop."""
        while self.clock.time() < t:
            if self.stop:
                return False
            self.tick()
            self.clock.sleep(min(self.poll_s, max(0.0, t - self.clock.time())))
        return not self.stop


def arrivals_then_hold(
    p: Phases, scenario: Scenario, t0: float, schedule: ArrivalSchedule
) -> float | None:
    """Start every user (each waits for its slot) and wait for the last arrival; the end of the
    arrivals (epoch), or None when stopped."""
    p.enter("arrivals")
    rate = spawn_rate(scenario.users, schedule.duration_s, peak_rate(schedule))
    p.set_users(scenario.users, rate)
    end = t0 + schedule.duration_s
    return end if p.wait_until(end) else None


def drive_storm(p: Phases, scenario: Scenario, t0: float, schedule: ArrivalSchedule) -> None:
    """storm: everyone arrives by the schedule, then stays connected for ``hold_s``."""
    end = arrivals_then_hold(p, scenario, t0, schedule)
    if end is not None:
        p.enter("hold")
        p.wait_until(end + scenario.hold_s)


def drive_steady(p: Phases, scenario: Scenario, t0: float, schedule: ArrivalSchedule) -> None:
    """steady: the same phases as a storm; the users run the action mix while they hold."""
    drive_storm(p, scenario, t0, schedule)


def drive_herd(p: Phases, scenario: Scenario, t0: float, schedule: ArrivalSchedule) -> None:
    """herd: arrivals, ``settle_s``, the outage (every socket drops; each client reconnects when
    the web client's backoff says), then ``hold_s`` after the last reconnect."""
    end = arrivals_then_hold(p, scenario, t0, schedule)
    if end is None:
        return
    drop_at = end + scenario.herd.settle_s
    p.enter("settle")
    if not p.wait_until(drop_at):
        return
    p.enter("herd")
    backoff = Backoff.from_spec(scenario.websocket)
    last = max(herd_offsets(HERD_SAMPLE, scenario.herd.outage_s, backoff))
    if not p.wait_until(drop_at + last + HERD_MARGIN_S):
        return
    p.enter("hold")
    p.wait_until(p.now() + scenario.hold_s)


def before_hold_s(scenario: Scenario) -> float:
    """How long the phases before the hold last, from the first scheduled arrival."""
    end = arrival_schedule(scenario).duration_s
    if scenario.kind == "herd":
        backoff = Backoff.from_spec(scenario.websocket)
        last = max(herd_offsets(HERD_SAMPLE, scenario.herd.outage_s, backoff))
        end += scenario.herd.settle_s + last + HERD_MARGIN_S
    return end


def expected_s(scenario: Scenario) -> float:
    """The planned length of a run of ``scenario`` (a ceiling: its time limit)."""
    if scenario.kind == "ceiling":
        return scenario.ceiling.max_duration_s
    return before_hold_s(scenario) + scenario.hold_s


def with_total_duration(scenario: Scenario, total_s: float) -> Scenario:
    """``--duration``: the whole run lasts ``total_s``; the hold gets what the phases before it
    leave (a ceiling: its time limit). Too short for those phases is a UserError."""
    if scenario.kind == "ceiling":
        spec = scenario.ceiling.model_copy(update={"max_duration_s": total_s})
        return scenario.model_copy(update={"ceiling": spec})
    before = before_hold_s(scenario)
    if total_s < before:
        raise UserError(
            f"{total_s:g} s is shorter than the {scenario.kind}'s phases before the hold "
            f"({before:,.0f} s): give a longer --duration, or --hold for the hold alone",
            source="command line",
            field="--duration",
        )
    return scenario.model_copy(update={"hold_s": total_s - before})


Driver = Callable[[Phases, Scenario, float, ArrivalSchedule], None]
DRIVERS: dict[str, Driver] = {"storm": drive_storm, "steady": drive_steady, "herd": drive_herd}
