"""Arrival schedules (open model) and the web client's WebSocket reconnect backoff.

Pure functions: the runner and the users compute the same schedule from the same plan, so every
worker knows when each of its users must start without asking anyone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


def uniform_offset(index: int, users: int, spread_s: float) -> float:
    """Seconds after the start at which user ``index`` (0-based) of ``users`` arrives.

    Arrivals are spread uniformly: ``index * spread_s / users``, so ``users`` arrivals take
    ``spread_s`` seconds at a constant rate.
    """
    if users <= 0 or spread_s <= 0:
        return 0.0
    return index * spread_s / users


def global_index(worker_index: int, workers: int, local_index: int) -> int:
    """Interleave users across workers: worker k's j-th user is global user ``k + j*workers``.

    Each worker then covers the whole arrival window at 1/workers of the rate.
    """
    return worker_index + local_index * max(1, workers)


@dataclass(frozen=True)
class Backoff:
    """The Mattermost web client's WebSocket reconnect rule (websocket_client.ts).

    Retry after ``min_s``; once more than ``grow_after`` attempts have failed, after
    ``min_s * failures**2``; never more than ``max_s``; plus a random 0..``jitter_s``.
    """

    min_s: float = 3.0
    max_s: float = 300.0
    jitter_s: float = 2.0
    grow_after: int = 7

    def base_delay(self, failures: int) -> float:
        """The delay before the next attempt after ``failures`` failed attempts, no jitter."""
        delay = self.min_s
        if failures > self.grow_after:
            delay = min(self.min_s * failures * failures, self.max_s)
        return delay

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """The delay with the web client's jitter."""
        r = (rng or random).random()
        return self.base_delay(failures) + r * self.jitter_s

    def reconnect_time(self, outage_s: float, rng: random.Random | None = None) -> float:
        """Seconds after the socket dropped at which a client reconnects after an outage.

        The client retries by the rule; every attempt before ``outage_s`` fails; the first one at
        or after it succeeds.
        """
        t, failures = 0.0, 0
        while True:
            t += self.delay(failures, rng)
            if t >= outage_s:
                return t
            failures += 1


def herd_offsets(users: int, outage_s: float, backoff: Backoff, seed: int = 0) -> list[float]:
    """Reconnect times (seconds after the drop) of ``users`` clients, in user order."""
    rng = random.Random(seed)
    return [backoff.reconnect_time(outage_s, rng) for _ in range(users)]
