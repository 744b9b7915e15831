"""Abort rules: stop a run that is hurting its target (the scenario's ``abort:`` list).

Each check (once the window moved: every whole second) reads the live statistics over the
rule's ``window_s`` whole seconds ending 2 s ago (batches arrive every 2 s; the default 10 s is
the live view's recent window, :data:`mmload.load.status.RECENT_S`), percentiles through HDR, by
the same measures the SLOs use (:func:`mmload.load.slo.window_measures`), plus
``http_5xx_rate``: 5xx answers / requests answered. A rule breaches while its value is above
its threshold; a window without a value (no request in it) neither starts nor ends a breach.
When a breach has held for the rule's ``for_s``, the watch sets the run's stop flag with outcome
``aborted``: arrivals stop, the users stop as on Ctrl-C, and run.json keeps the rule that fired
(:meth:`AbortWatch.record`). The clock is the caller's: tests drive a watch on virtual time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mmload import record
from mmload.config.scenario import AbortRule, SLOs
from mmload.load.context import StopFlag
from mmload.load.livestats import LiveStats
from mmload.load.slo import window_measures
from mmload.load.status import RECENT_S

DEFAULT_WINDOW_S = RECENT_S[0] - RECENT_S[1]


@dataclass(frozen=True)
class Fired:
    """A rule that fired: its value when it did, since when it held, when it fired (epoch)."""

    rule: AbortRule
    value: float | None  # None: the window had no request when it fired (the breach went on)
    since: float
    at: float

    def sentence(self) -> str:
        """``abort rule error_rate above 0.2 for 30 s fired: 0.43 since ...``."""
        value = "no request measured" if self.value is None else f"{self.value:.4g}"
        return (
            f"abort rule {self.rule.name} fired: {self.rule.metric} {value} "
            f"(above {self.rule.above:g} since {record.iso_epoch(self.since)})"
        )

    def as_dict(self) -> dict[str, Any]:
        """run.json's ``abort``."""
        return {
            "rule": self.rule.name,
            "metric": self.rule.metric,
            "value": self.value,
            "threshold": self.rule.above,
            "for_s": self.rule.for_s,
            "window_s": self.rule.window_s,
            "since": record.iso_epoch(self.since),
            "at": record.iso_epoch(self.at),
        }


def abort_measures(
    live: LiveStats, exclude: tuple[str, ...], now: float, window_s: float = DEFAULT_WINDOW_S
) -> dict[str, Any]:
    """Every abort metric over the ``window_s`` seconds that end 2 s before epoch ``now``."""
    t_to = now - RECENT_S[1]
    t_from = t_to - window_s
    out = window_measures(live, SLOs(exclude=list(exclude)), t_from, t_to)
    overall = live.window(t_from, t_to, exclude)
    answered = int(overall["count"]) - overall["classes"].get("transport", 0)
    out["http_5xx_rate"] = overall["classes"].get("server", 0) / answered if answered else None
    return out


class AbortWatch:
    """The scenario's abort rules over one run (see the module docstring)."""

    def __init__(self, rules: list[AbortRule], stop: StopFlag, exclude: tuple[str, ...] = ()):
        self.rules = rules
        self.stop = stop
        self.exclude = exclude
        self.since: list[float | None] = [None] * len(rules)
        self.fired: Fired | None = None
        self._window_end: int | None = None  # the last measured window's end (whole second)

    def check(self, now: float, live: LiveStats) -> Fired | None:
        """Measure when the window moved (it moves by whole seconds) and fire the first rule
        held long enough."""
        end = math.floor(now - RECENT_S[1])
        if not self.rules or self.fired is not None or end == self._window_end:
            return self.fired
        self._window_end = end
        measures: dict[float, dict[str, Any]] = {}
        for i, rule in enumerate(self.rules):
            if rule.window_s not in measures:
                measures[rule.window_s] = abort_measures(live, self.exclude, now, rule.window_s)
            value = measures[rule.window_s][rule.metric]
            if value is not None and value <= rule.above:
                self.since[i] = None
            elif value is not None and self.since[i] is None:
                self.since[i] = now
            since = self.since[i]
            if since is not None and now - since >= rule.for_s and self.fired is None:
                self.fired = Fired(rule, value, since, now)
                self.stop.set(self.fired.sentence(), "aborted")
        return self.fired

    def record(self) -> dict[str, Any]:
        """run.json's ``abort`` (empty when no rule fired)."""
        return {"abort": self.fired.as_dict()} if self.fired else {}
