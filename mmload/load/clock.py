"""The clock the engine's loops run on: wall time and gevent's sleep, or a fake one in tests."""

from __future__ import annotations

import time
from typing import Protocol

import gevent


class Clock(Protocol):
    """What a loop needs of time: the current epoch seconds, and a cooperative sleep."""

    def time(self) -> float:
        """Epoch seconds now."""
        ...

    def sleep(self, seconds: float) -> None:
        """Pause the calling greenlet for ``seconds``."""
        ...


class WallClock:
    """Real time; sleeping yields to the other greenlets (users, the recorder)."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        gevent.sleep(seconds)


WALL = WallClock()
