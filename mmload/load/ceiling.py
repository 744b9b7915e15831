"""The ceiling feedback loop, like Mattermost's load-test coordinator.

Every interval: if every SLO held, add ``step`` users, but stay ``min_step`` below the count that
broke most recently; if one broke, remove ``remove_fraction`` of them (at least ``min_step``) and
halve the step (never below ``min_step``). Stop when the user count has been stable over the last
``stable_intervals`` intervals (spread / mean <= ``stable_tolerance``) after at least one break,
or when ``max_users`` held for that long. The supported users are the highest count at which
every SLO held within that final window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmload.config.scenario import Ceiling


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
