"""Arrival schedules (open model) and the web client's WebSocket reconnect backoff.

Pure functions: the runner and the users compute the same schedule from the same plan, so every
worker knows when each of its users must start without asking anyone. :func:`arrival_schedule`
is the one place that decides the arrival curve: the plan (each user's login time), the phase
drivers (when arrivals end) and the live view (arrivals due so far) all ask it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Protocol

from mmload.config.arrivals import PoissonCurve
from mmload.config.scenario import Scenario, WebSocketSpec
from mmload.load.curves import CurveArrivals, PoissonArrivals


def uniform_offset(index: int, users: int, spread_s: float) -> float:
    """Seconds after the start at which user ``index`` (0-based) of ``users`` arrives.

    Arrivals are spread uniformly: ``index * spread_s / users``, so ``users`` arrivals take
    ``spread_s`` seconds at a constant rate.
    """
    if users <= 0 or spread_s <= 0:
        return 0.0
    return index * spread_s / users


class ArrivalSchedule(Protocol):
    """When each of ``users`` scheduled users arrives, in seconds after the first arrival."""

    users: int

    @property
    def duration_s(self) -> float:
        """Seconds from the first scheduled arrival to the end of the arrivals."""
        ...

    def offset(self, index: int) -> float:
        """Seconds after the start at which user ``index`` (0-based) arrives."""
        ...

    def due(self, elapsed_s: float) -> int:
        """How many users are scheduled to have arrived ``elapsed_s`` seconds after the start."""
        ...

    def expected(self, elapsed_s: float) -> float:
        """The requested curve: arrivals asked for by ``elapsed_s`` (not rounded to users)."""
        ...


@dataclass(frozen=True)
class UniformArrivals:
    """``users`` arrivals spread uniformly over ``spread_s`` seconds (a constant rate)."""

    users: int
    spread_s: float

    @property
    def duration_s(self) -> float:
        return self.spread_s

    def offset(self, index: int) -> float:
        return uniform_offset(index, self.users, self.spread_s)

    def due(self, elapsed_s: float) -> int:
        if elapsed_s < 0 or self.users <= 0:
            return 0
        if self.spread_s <= 0:
            return self.users
        return min(self.users, math.floor(elapsed_s * self.users / self.spread_s) + 1)

    def expected(self, elapsed_s: float) -> float:
        if self.spread_s <= 0:
            return float(self.users) if elapsed_s >= 0 else 0.0
        return self.users * min(1.0, max(0.0, elapsed_s / self.spread_s))


def arrival_schedule(scenario: Scenario, users: int | None = None) -> ArrivalSchedule:
    """The arrival curve of ``scenario`` for ``users`` scheduled users (default: all of them;
    a ceiling run schedules none: its users arrive as the loop adds them): ``arrivals:``
    uniform (the default), poisson, or a rate profile (:mod:`mmload.load.curves`)."""
    if users is None:
        users = 0 if scenario.kind == "ceiling" else scenario.users
    curve = scenario.arrivals
    if isinstance(curve, PoissonCurve):
        return PoissonArrivals(users, scenario.arrival_s, curve.seed)
    segments = curve.segments()
    if segments is None and curve.curve == "replay":
        raise ValueError("a replay curve whose source was not read (config.curves)")
    if segments is None or users == 0:
        return UniformArrivals(users, scenario.arrival_s)
    return CurveArrivals(users, scenario.arrival_s, segments)


def global_index(worker_index: int, workers: int, local_index: int) -> int:
    """Interleave users across workers: worker k's j-th user is global user ``k + j*workers``.

    Each worker then covers the whole arrival window at 1/workers of the rate.
    """
    return worker_index + local_index * max(1, workers)


@dataclass(frozen=True)
class Backoff:
    """The Mattermost web client's WebSocket reconnect rule (``webapp/platform/client/src/
    websocket.ts``, ``onclose``).

    The client counts closes since its last open (``connectFailCount``), the drop itself
    included: the first retry after a drop sees a count of 1. It retries after ``min_s``; once
    the count exceeds ``grow_after``, after ``min_s * count**2``; never more than ``max_s``;
    plus a random 0..``jitter_s``.
    """

    min_s: float
    max_s: float
    jitter_s: float
    grow_after: int

    @classmethod
    def from_spec(cls, spec: WebSocketSpec) -> Backoff:
        """The rule with a scenario's WebSocket settings (defaults live in ``WebSocketSpec``)."""
        return cls(
            spec.reconnect_min_s,
            spec.reconnect_max_s,
            spec.reconnect_jitter_s,
            spec.reconnect_backoff_after,
        )

    def base_delay(self, fail_count: int) -> float:
        """The delay before the next attempt when ``fail_count`` closes happened since the
        last open (the drop counts: 1 after a drop), no jitter."""
        delay = self.min_s
        if fail_count > self.grow_after:
            delay = min(self.min_s * fail_count * fail_count, self.max_s)
        return delay

    def delay(self, fail_count: int, rng: random.Random | None = None) -> float:
        """The delay with the web client's jitter."""
        r = (rng or random).random()
        return self.base_delay(fail_count) + r * self.jitter_s

    def reconnect_time(self, outage_s: float, rng: random.Random | None = None) -> float:
        """Seconds after the socket dropped at which a client reconnects after an outage.

        The drop is the first close; every attempt before ``outage_s`` fails (one more close);
        the first one at or after it succeeds. Where the delay stays the same for many attempts
        that all fail (fast retries over a long outage: 36,000 of 0.1 s in an hour), they are
        taken at once, their jitter drawn as one sum (:func:`jitter_sum`): a few steps instead
        of a loop that would hold the process, and Ctrl-C, for minutes.
        """
        r = rng or random
        t, closes = 0.0, 1
        while True:
            base = self.base_delay(closes)
            k = min(
                self._same_delay_after(closes), int((outage_s - t) / (base + self.jitter_s)) - 1
            )
            if k >= JUMP_MIN_ATTEMPTS:  # k attempts, each at most base + jitter: all before
                t += k * base + self.jitter_s * jitter_sum(k, r)
                closes += k
                continue
            t += self.delay(closes, r)
            if t >= outage_s:
                return t
            closes += 1

    def _same_delay_after(self, closes: int) -> int:
        """How many attempts from ``closes`` on have the same base delay (a large number once
        it is at ``max_s``; 0 while it grows)."""
        if closes <= self.grow_after:
            return self.grow_after - closes + 1
        if self.base_delay(closes) >= self.max_s:
            return 1 << 62
        return 0


JUMP_MIN_ATTEMPTS = 64  # fewer same-delay attempts are drawn one by one (the exact rule)


def jitter_sum(k: int, rng: random.Random | Any) -> float:
    """The sum of ``k`` uniform 0..1 draws (Irwin-Hall), for k >= JUMP_MIN_ATTEMPTS drawn as its
    normal approximation (mean k/2, variance k/12: off by far less than one draw)."""
    return min(float(k), max(0.0, rng.gauss(k / 2, math.sqrt(k / 12))))


def herd_offsets(users: int, outage_s: float, backoff: Backoff, seed: int = 0) -> list[float]:
    """Reconnect times (seconds after the drop) of ``users`` clients, in user order."""
    rng = random.Random(seed)
    return [backoff.reconnect_time(outage_s, rng) for _ in range(users)]
