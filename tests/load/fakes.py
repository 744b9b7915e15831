"""Test doubles for the load engine's seams: a virtual clock, a recording ``set_users``, and a
way to import Locust into the pytest process without gevent's monkey-patching.

Locust monkey-patches the whole process on import (sockets, threads, ``time.sleep``), which the
other stages' in-process tests must not get. Its runners themselves only need gevent, so the
in-process tests import it with Locust's own switch ``LOCUST_SKIP_MONKEY_PATCH``, set only for
that import (subprocesses started by later tests must not inherit it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import SimpleNamespace

import gevent


def import_locust_unpatched() -> None:
    """Import Locust without monkey-patching (a no-op once it is imported)."""
    if "locust" in sys.modules:
        return
    os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
    try:
        import locust  # noqa: F401
    finally:
        del os.environ["LOCUST_SKIP_MONKEY_PATCH"]


class FakeClock:
    """Virtual time: ``sleep`` advances it at once (and yields, so greenlets can run).

    ``at(t, fn)`` runs ``fn`` when virtual time first reaches ``t`` (like an event on a
    timeline: a user logging in, a worker reporting, Ctrl-C).
    """

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start
        self.start = start
        self.sleeps: list[float] = []
        self._events: list[tuple[float, Callable[[], None]]] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        due = [e for e in self._events if e[0] <= self.now]
        self._events = [e for e in self._events if e[0] > self.now]
        for _, fn in sorted(due, key=lambda e: e[0]):
            fn()
        gevent.sleep(0)

    def at(self, t: float, fn: Callable[[], None]) -> None:
        self._events.append((t, fn))

    @property
    def elapsed(self) -> float:
        return self.now - self.start


class UserCount:
    """A fake ``set_users(count, spawn_rate)``: records every call with its virtual time."""

    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.calls: list[tuple[float, int, float]] = []

    def __call__(self, count: int, spawn_rate: float) -> None:
        self.calls.append((self.clock.elapsed, count, spawn_rate))

    @property
    def current(self) -> int:
        return self.calls[-1][1] if self.calls else 0


class Hook:
    """The listener interface of Locust's EventHook, without importing Locust."""

    def __init__(self) -> None:
        self.listeners: list = []

    def add_listener(self, fn) -> None:
        self.listeners.append(fn)

    def remove_listener(self, fn) -> None:
        self.listeners.remove(fn)

    def fire(self, **kw) -> None:
        for fn in self.listeners:
            fn(**kw)


def Events() -> SimpleNamespace:
    """The environment's events that the collector and the worker listen to."""
    return SimpleNamespace(request=Hook(), test_stop=Hook())
