"""Collect every request where it is made: one row and HDR samples per request, in batches.

A :class:`Collector` runs in every process that runs users. It listens to Locust's ``request``
event and keeps the rows, the arrivals and HDR histograms (per endpoint, per 10 s window, service
time and time from the scheduled start). Every ``flush_s`` it hands a batch to its sink: the
local :class:`~mmload.load.recorder.RecordWriter`, or the master through a Locust custom message.

The request event is every request's hot path, so a sample (whole µs) is only appended there;
the histograms are built and encoded per batch with numpy (:func:`mmload.hdr.of_values_us`,
:func:`mmload.hdr.encode_sparse`): the same counts and bytes as hdrh's ``record_value`` and
``encode``, without hdrh's per-value Python or its per-call ctypes buffers in the users' loop.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import gevent

from mmload import hdr, record
from mmload.load.clock import WALL, Clock
from mmload.load.gcpolicy import hold_full_collections, release_full_collections

log = logging.getLogger(__name__)

REQUEST_COLUMNS = [f.name for f in record.REQUEST_SCHEMA]

Batch = dict[str, Any]


def hdr_entry(key: tuple[int, str, str], samples_us: list[int]) -> list[Any]:
    """A batch's histogram: [window, name, kind, encoded, count] of one key's samples."""
    win, name, kind = key
    histogram = hdr.of_values_us(samples_us)
    return [win, name, kind, hdr.encode_sparse(histogram), histogram.total]


def _error_text(exception: Any) -> str | None:
    if exception is None:
        return None
    text = str(exception) or type(exception).__name__
    return text.splitlines()[0][:200] if text else type(exception).__name__


class Collector:
    """Buffers the requests and arrivals of one process and ships them every ``flush_s``."""

    def __init__(
        self,
        environment: Any,
        worker: str,
        sink: Callable[[Batch], None],
        flush_s: float,
        clock: Clock = WALL,
        on_error: Callable[[BaseException], None] | None = None,
    ):
        self.environment = environment
        self.on_error = on_error  # a failed flush (else logged): the run's record writer fails
        self.worker = worker
        self.sink = sink
        self.flush_s = flush_s
        self._buf: list[tuple] = []
        self._arrivals: list[dict[str, Any]] = []
        self._samples: dict[tuple[int, str, str], list[int]] = {}  # (window, name, kind) -> µs
        self.clock = clock
        self._greenlet: gevent.Greenlet | None = None
        environment.events.request.add_listener(self.on_request)

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        exception: Any = None,
        context: dict[str, Any] | None = None,
        start_time: float | None = None,
        response: Any = None,
        **_: Any,
    ) -> None:
        """Locust's request event: one row, plus the HDR histograms."""
        # the hot path of every request: one tuple, one or two histogram updates
        if context is None:
            context = {}
        start = start_time if start_time is not None else time.time() - response_time / 1000
        lag = context.get("lag_s")
        status = context["status"] if "status" in context else getattr(response, "status_code", 0)
        self._buf.append(
            (
                int(start * 1e6),
                None if lag is None else int((start - lag) * 1e6),
                name,
                request_type,
                int(status or 0),
                float(response_time),
                int(response_length or 0),
                None if exception is None else _error_text(exception),
                context.get("user"),
            )
        )
        win = int(start // record.WINDOW_S * record.WINDOW_S)
        us = int(response_time * 1000)
        if us <= 0:
            us = 1
        self._sample((win, name, "service"), us)
        if lag is not None:
            self._sample((win, name, "corrected"), max(1, int(lag * 1e6) + us))

    def _sample(self, key: tuple[int, str, str], us: int) -> None:
        samples = self._samples.get(key)
        if samples is None:
            samples = self._samples[key] = []
        samples.append(us)

    def add_arrival(self, row: dict[str, Any]) -> None:
        """One arrival row (columns of record.ARRIVAL_SCHEMA; times as epoch seconds)."""
        self._arrivals.append({**row, "worker": self.worker})

    def take_batch(self) -> Batch:
        """Everything collected since the last batch (and reset)."""
        buf, self._buf = self._buf, []
        columns = list(zip(*buf, strict=True)) if buf else [()] * (len(REQUEST_COLUMNS) - 1)
        rows = {c: list(col) for c, col in zip(REQUEST_COLUMNS[:-1], columns, strict=True)}
        rows["worker"] = [self.worker] * len(buf)
        arrivals, self._arrivals = self._arrivals, []
        samples, self._samples = self._samples, {}
        return {
            "worker": self.worker,
            "requests": rows,
            "arrivals": arrivals,
            "hdr": [hdr_entry(key, values) for key, values in samples.items()],
        }

    def flush(self) -> None:
        """Hand the current batch to the sink (even an empty one: it doubles as a heartbeat)."""
        try:
            self.sink(self.take_batch())
        except Exception as exc:  # a failed flush must not kill the users
            if self.on_error is None:
                log.exception("flushing the run record failed")
            else:
                self.on_error(exc)

    def start(self) -> None:
        """Flush every ``flush_s`` seconds in the background; no full garbage collections in
        this process until :meth:`stop` (see :mod:`mmload.load.gcpolicy`)."""

        def loop() -> None:
            while True:
                self.clock.sleep(self.flush_s)
                self.flush()

        if self._greenlet is None:
            hold_full_collections()
            self._greenlet = gevent.spawn(loop)

    def stop(self) -> None:
        """Stop the background flushing and flush what is left."""
        if self._greenlet is not None:
            self._greenlet.kill(block=True)
            self._greenlet = None
        self.flush()
        with contextlib.suppress(ValueError):
            self.environment.events.request.remove_listener(self.on_request)
        found = release_full_collections()
        if found:
            log.debug("the deferred full collection freed %d objects", found)
