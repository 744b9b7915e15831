"""The ceiling feedback loop, like Mattermost's load-test coordinator.

Every interval: if every SLO held, add ``step`` users, but stay ``min_step`` below the count that
broke most recently; if one broke, remove ``remove_fraction`` of them (at least ``min_step``) and
halve the step (never below ``min_step``). Stop when the user count has been stable over the last
``stable_intervals`` intervals (spread / mean <= ``stable_tolerance``) after at least one break,
or when ``max_users`` held for that long. The supported users are the highest count at which
every SLO held within that final window. An interval in which a required SLO could not be
measured cannot be judged: the loop stops there and the run fails, saying which SLO.

:class:`CeilingController` is the pure decision; :class:`CeilingLoop` runs it against a run
(spawning, waiting for logins and data, measuring each interval) on the phase drivers' clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mmload import record
from mmload.config.scenario import Ceiling
from mmload.load import slo
from mmload.load.phases import Phases
from mmload.load.status import CeilingProgress

log = logging.getLogger(__name__)


@dataclass
class Step:
    """One interval's decision."""

    users: int  # the users measured in this interval
    held: bool
    failing: list[str]
    next_users: int
    done: bool


@dataclass
class CeilingController:
    """Pure decision logic: feed it one verdict per interval, it says how many users next."""

    spec: Ceiling
    users: int = 0
    step: int = 0
    broke: bool = False
    last_broken: int | None = None
    history: list[Step] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.users = self.users or self.spec.start_users
        self.step = self.step or self.spec.step_users

    def decide(self, held: bool, failing: list[str] | None = None) -> Step:
        """Record the interval just measured at ``self.users`` and choose the next count."""
        measured = self.users
        if held:
            nxt = min(self.spec.max_users, measured + self.step)
            if self.last_broken is not None:
                nxt = max(measured, min(nxt, self.last_broken - self.spec.min_step_users))
        else:
            self.broke = True
            self.last_broken = measured
            self.step = max(self.spec.min_step_users, self.step // 2)
            remove = max(self.spec.min_step_users, round(measured * self.spec.remove_fraction))
            nxt = max(1, measured - remove)
        step = Step(measured, held, failing or [], nxt, False)
        self.history.append(step)
        step.done = self._stable()
        self.users = measured if step.done else nxt
        return step

    def _stable(self) -> bool:
        n = self.spec.stable_intervals
        window = self.history[-n:]
        if len(window) < n:
            return False
        counts = [s.users for s in window]
        if not self.broke:  # still climbing: stable only when pinned at max_users and holding
            return all(
                c == self.spec.max_users and s.held for c, s in zip(counts, window, strict=True)
            )
        mean = sum(counts) / n
        return (max(counts) - min(counts)) <= self.spec.stable_tolerance * mean

    def supported_users(self) -> int | None:
        """The highest user count that held in the final window (None if none held)."""
        window = self.history[-self.spec.stable_intervals :]
        held = [s.users for s in window if s.held]
        return max(held) if held else None


# ---- the loop ------------------------------------------------------------------------------
LOGIN_GRACE_S = 30.0  # after the added users' ramp, how long to wait for their logins
DATA_SLACK_S = 0.2  # a batch counts for an interval when sent this long after it ended


@dataclass
class CeilingLoop:
    """Drive the user count by the controller, one measured interval per decision.

    ``arrived()`` counts users whose login finished; ``reported_since(t)`` tells whether every
    process has sent a batch after epoch ``t``; ``measure(t_from, t_to)`` gives the SLO verdicts
    of that interval. ``log`` keeps one entry per decision (run.json's ``ceiling.intervals``).
    """

    spec: Ceiling
    phases: Phases
    measure: Callable[[float, float], list[dict[str, Any]]]
    arrived: Callable[[], int]
    reported_since: Callable[[float], bool]
    data_wait_s: float = 2 * record.FLUSH_INTERVAL_S
    controller: CeilingController = field(init=False)
    log: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.controller = CeilingController(self.spec)

    def run(self) -> None:
        """Until the count is stable, ``max_duration_s`` passes, or the run stops."""
        p, spec, ctl = self.phases, self.spec, self.controller
        deadline = p.now() + spec.max_duration_s
        p.enter("ceiling")
        self._show()
        p.set_users(ctl.users, spec.spawn_rate)
        added = spawned = ctl.users
        while not p.stop and p.now() < deadline:
            if not self._await_logins(spawned, added):
                return
            measure_from = p.now() + spec.settle_s
            measure_to = measure_from + spec.interval_s
            if not p.wait_until(measure_to):
                return
            self._await_data(measure_to + DATA_SLACK_S)
            if p.stop:
                return
            step = self._decide(measure_from, measure_to)
            if step.done:
                return
            added = step.next_users - step.users
            spawned += max(0, added)
            if added:
                p.set_users(step.next_users, spec.spawn_rate)

    def _await_logins(self, spawned: int, added: int) -> bool:
        """Wait until the users added so far have logged in (or their ramp plus a grace)."""
        p = self.phases
        due = p.now() + max(0, added) / self.spec.spawn_rate + LOGIN_GRACE_S
        while self.arrived() < spawned and p.now() < due:
            if not p.wait_until(min(due, p.now() + p.poll_s)):
                return False
        return True

    def _await_data(self, since: float) -> None:
        """Every process's next batch holds the interval's last requests: wait for it."""
        p = self.phases
        due = p.now() + self.data_wait_s
        while not self.reported_since(since):
            if p.now() > due or not p.wait_until(p.now() + 0.1):
                return

    def _decide(self, measure_from: float, measure_to: float) -> Step:
        verdicts = self.measure(measure_from, measure_to)
        slo.stop_if_unmeasured(verdicts, self.controller.users)
        held = slo.all_held(verdicts)
        failing = slo.failing(verdicts)
        step = self.controller.decide(held, failing)
        self.log.append(
            {
                "users": step.users,
                "held": held,
                "failing": failing,
                "next_users": step.next_users,
                "verdicts": verdicts,
                "at": record.iso(record.utc_now()),
            }
        )
        log.info("ceiling: %s users %s", step.users, "held" if held else f"broke {failing}")
        self._show(step)
        return step

    def _show(self, step: Step | None = None) -> None:
        ctl = self.controller
        self.phases.status.ceiling = CeilingProgress(
            ctl.users,
            ctl.step,
            None if step is None else step.held,
            () if step is None else tuple(step.failing),
        )

    def summary(self) -> dict[str, Any]:
        """run.json's ``supported_users`` and ``ceiling`` entries."""
        ctl = self.controller
        return {
            "supported_users": ctl.supported_users(),
            "ceiling": {
                "converged": bool(ctl.history and ctl.history[-1].done),
                "capped": not ctl.broke,
                "intervals": self.log,
            },
        }
