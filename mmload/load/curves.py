"""Arrival schedules of the curves other than ``uniform`` (:mod:`mmload.config.arrivals`).

A profile (rate segments) is stretched to the scenario's ``users`` over ``arrival_s``: its
cumulative arrivals, scaled, are the *requested* curve (:meth:`CurveArrivals.expected`), and
user ``k`` arrives where that curve reaches ``k + 0.5`` (each arrival in the middle of its own
unit of the curve, so a window holds the arrivals its share of the curve asks for). ``poisson``
draws ``users`` points uniformly over the window, seeded (a Poisson process given its count).
The offsets are computed once per schedule, on first use.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from array import array
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from mmload.config.arrivals import Segment


@dataclass(frozen=True, eq=False)
class CurveArrivals:
    """``users`` arrivals over ``spread_s`` seconds, shaped by ``segments``."""

    users: int
    spread_s: float
    segments: list[Segment] = field(repr=False)

    @property
    def duration_s(self) -> float:
        return self.spread_s

    @cached_property
    def _profile(self) -> tuple[list[float], list[float], float, float]:
        """Segment start times and start masses (profile units), total mass, length."""
        starts, masses, t, m = [], [], 0.0, 0.0
        for s in self.segments:
            starts.append(t)
            masses.append(m)
            t += s.duration_s
            m += s.arrivals
        return starts, masses, m, t

    def expected(self, elapsed_s: float) -> float:
        """The requested curve: arrivals asked for by ``elapsed_s`` seconds after the start."""
        starts, masses, total, length = self._profile
        if self.spread_s <= 0:
            return float(self.users) if elapsed_s >= 0 else 0.0
        if elapsed_s <= 0 or total <= 0:
            return 0.0
        t = min(length, elapsed_s * length / self.spread_s)
        i = max(0, bisect.bisect_right(starts, t) - 1)
        s = self.segments[i]
        tau = min(s.duration_s, t - starts[i])
        mass = masses[i] + s.start * tau + (s.end - s.start) * tau * tau / (2 * s.duration_s)
        return min(float(self.users), mass * self.users / total)

    @cached_property
    def _offsets(self) -> array:
        starts, masses, total, length = self._profile
        f = self.spread_s / length if length > 0 else 0.0
        out = array("d")
        for k in range(self.users):
            m = (k + 0.5) * total / self.users
            i = max(0, bisect.bisect_right(masses, m) - 1)
            s = self.segments[i]
            out.append((starts[i] + _time_in(s, m - masses[i])) * f)
        return out

    def offset(self, index: int) -> float:
        return self._offsets[index]

    def due(self, elapsed_s: float) -> int:
        if elapsed_s < 0 or self.users <= 0:
            return 0
        return bisect.bisect_right(self._offsets, elapsed_s)


def _time_in(s: Segment, mass: float) -> float:
    """Seconds into segment ``s`` at which ``mass`` arrivals have come (rate linear in it)."""
    k2 = (s.end - s.start) / (2 * s.duration_s)
    root = math.sqrt(max(0.0, s.start * s.start + 4 * k2 * mass))
    denom = s.start + root
    tau = 2 * mass / denom if denom > 0 else 0.0
    return min(s.duration_s, max(0.0, tau))


@dataclass(frozen=True, eq=False)
class PoissonArrivals:
    """``users`` arrivals at points drawn uniformly over ``spread_s`` with ``seed``, sorted."""

    users: int
    spread_s: float
    seed: int = 0

    @property
    def duration_s(self) -> float:
        return self.spread_s

    def expected(self, elapsed_s: float) -> float:
        """The requested curve: the process's mean, a constant rate."""
        if self.spread_s <= 0:
            return float(self.users) if elapsed_s >= 0 else 0.0
        return self.users * min(1.0, max(0.0, elapsed_s / self.spread_s))

    @cached_property
    def _offsets(self) -> array:
        rng = random.Random(self.seed)
        return array("d", sorted(rng.random() * self.spread_s for _ in range(self.users)))

    def offset(self, index: int) -> float:
        return self._offsets[index]

    def due(self, elapsed_s: float) -> int:
        if elapsed_s < 0:
            return 0
        return bisect.bisect_right(self._offsets, elapsed_s)


MAX_PEAK_STEPS = 20_000


def peak_rate(schedule: DueLike) -> float:
    """The most arrivals due in any second of the schedule (in steps of at least 1 s)."""
    step = max(1.0, schedule.duration_s / MAX_PEAK_STEPS)
    steps = range(math.ceil(schedule.duration_s / step) + 1)
    return max(schedule.due(i * step + step) - schedule.due(i * step) for i in steps) / step


def requested_windows(schedule: ScheduleLike, window_s: float) -> list[float]:
    """The requested arrivals per ``window_s`` window from the schedule's start (run.json
    ``arrival_curve.requested``), to the millis of an arrival."""
    n = max(1, math.ceil(schedule.duration_s / window_s - 1e-9))
    cum = [schedule.expected(i * window_s) for i in range(n)] + [float(schedule.users)]
    return [round(b - a, 3) for a, b in itertools.pairwise(cum)]


class DueLike(Protocol):
    @property
    def duration_s(self) -> float: ...

    def due(self, elapsed_s: float) -> int: ...


class ScheduleLike(Protocol):
    users: int

    @property
    def duration_s(self) -> float: ...

    def expected(self, elapsed_s: float) -> float: ...
