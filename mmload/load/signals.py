"""Ctrl-C and SIGTERM during a run: they set the run's stop flag (outcome ``interrupted``)."""

from __future__ import annotations

import contextlib
import signal
from typing import Any

import gevent

from mmload.load.context import StopFlag


def install_signal_handlers(stop: StopFlag) -> list[Any]:
    """Ctrl-C and SIGTERM set ``stop`` (the run then ends ``interrupted``, data kept)."""
    handlers = []
    for sig, why in ((signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")):
        with contextlib.suppress(ValueError):  # not the main thread
            handlers.append(gevent.signal_handler(sig, stop.set, why))
    return handlers


def restore_signal_handlers(handlers: list[Any]) -> None:
    """Undo :func:`install_signal_handlers`."""
    for h in handlers:
        h.cancel()
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
