"""The web client's WebSocket: connect until ``hello``, 30 s ping, reconnect with its backoff.

As ``webapp/platform/client/src/websocket.ts`` (``WebSocketClient``) does, with ``resume`` on
(the 11.x web app): the URL carries ``connection_id``, ``sequence_number`` (the next event
number expected) and ``posted_ack=true``; events are numbered by ``seq`` and a gap closes the
socket with 4001 and reconnects; a reconnect with the kept connection id is *resumed* by the
server (no ``hello``: the missed events are replayed from ``sequence_number``), and a ``hello``
bringing a new connection id means the server lost them (``on_missed``: the web app's
``restart()``). Every successful reconnect calls ``on_reconnect`` (its ``reconnect()``).

Built on websocket-client, which cooperates with gevent once Locust has monkey-patched the socket
module. The connect (until ``hello``; a resumed connect: until the upgrade) and each ping round
trip are reported as Locust request samples named ``WS /api/v4/websocket`` and ``WS ping``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import gevent
import websocket

from mmload.config.scenario import WebSocketSpec
from mmload.load.pin import open_websocket
from mmload.load.schedule import Backoff
from mmload.load.ticker import Ticker, stop_ticker
from mmload.load.tls import stdlib_context

CONNECT_NAME = "WS /api/v4/websocket"
PING_NAME = "WS ping"
MISSED_PONG_CLOSE = 4000  # the web client's close code on a missed pong
SEQUENCE_GAP_CLOSE = 4001  # ... and on a missed event (``clientSequenceMismatchErrCode``)

Fire = Callable[..., None]
Hook = Callable[[], None]


def ws_url(http_base: str) -> str:
    """``http(s)://host/sub`` -> ``ws(s)://host/sub/api/v4/websocket``."""
    base = http_base.rstrip("/")
    scheme = "wss" if base.startswith("https") else "ws"
    return scheme + base[base.index(":") :] + "/api/v4/websocket"


class MMWebSocket:
    """One user's WebSocket connection and its background reader and pinger greenlets."""

    def __init__(
        self,
        url: str,
        token: str,
        fire: Fire,
        spec: WebSocketSpec,
        *,
        timeout_s: float,
        cookie: str | None = None,
        resume: bool = False,
        auth: str | None = None,
        source: str | None = None,
    ):
        self.url = url
        self.token = token
        self.fire = fire
        self.auth = auth or spec.auth or "challenge"
        self.resume = resume  # the 11.x client: connection_id, sequence_number, posted_ack
        self.ping_interval_s = spec.ping_interval_s
        self.backoff = Backoff.from_spec(spec)
        self.timeout_s = timeout_s
        self.cookie = cookie
        self.source = source  # the local address to connect from (None: the system's)
        self.ws: websocket.WebSocket | None = None
        self.connection_id: str | None = None
        self.server_version: str | None = None
        self.events = 0
        self.failures = 0
        self.last_backoff_s: float | None = None  # the latest reconnect delay drawn
        self.server_seq = 0  # the next event number expected (websocket.ts serverSequence)
        self.connected_at: float | None = None
        self.dropped_at: float | None = None  # the last drop (lastDisconnectAt)
        self.on_reconnect: Hook | None = None  # after a reconnect (the web app's reconnect())
        self.on_missed: Hook | None = None  # hello with a new connection id (its restart())
        self.on_event: Callable[[dict[str, Any]], None] | None = None  # every event, in order
        self._seq = itertools.count(1)
        self._pending_ping: tuple[int, float, float] | None = None  # seq, epoch, perf
        self._greenlets: list[gevent.Greenlet] = []  # the reader
        self._pings: Ticker | None = None
        self._closing = False
        self._reconnecting: gevent.Greenlet | None = None

    @property
    def connected(self) -> bool:
        """True while a socket that received ``hello`` is open."""
        return self.ws is not None

    def connect_url(self) -> str:
        """The URL of the next connect: with ``resume``, the web client's query parameters."""
        if not self.resume:
            return self.url
        return (
            f"{self.url}?connection_id={self.connection_id or ''}"
            f"&sequence_number={self.server_seq}&posted_ack=true"
        )

    def connect(self, context: dict[str, Any] | None = None) -> bool:
        """Open the socket, authenticate, wait for ``hello`` (a resume waits for none: the
        server answers it with the missed events, or a ``hello`` when it lost them); report one
        sample either way."""
        self._closing = False
        start, t0 = time.time(), time.perf_counter()
        ws = None
        resuming = self.resume and bool(self.connection_id)
        try:
            headers = [f"Authorization: Bearer {self.token}"] if self.auth == "header" else []
            cookie = self.cookie if self.auth != "challenge" else None
            ws = open_websocket(
                self.connect_url(),
                self.timeout_s,
                stdlib_context,
                self.source,
                header=headers,
                cookie=cookie,
            )
            if self.auth == "challenge":
                ws.send(
                    json.dumps(
                        {
                            "seq": next(self._seq),
                            "action": "authentication_challenge",
                            "data": {"token": self.token},
                        }
                    )
                )
            size = 0 if resuming else self._await_hello(ws)
        except Exception as exc:
            if ws is not None:
                with contextlib.suppress(Exception):
                    ws.close()
            self._report(CONNECT_NAME, start, t0, 0, exc, 0, context)
            return False
        self.ws = ws
        self.connected_at = time.time()
        self._report(CONNECT_NAME, start, t0, size, None, 101, context)
        stop_ticker(self._pings)
        self._greenlets = [gevent.spawn(self._reader, ws)]
        self._pings = Ticker(self.ping_interval_s, lambda: self._ping(ws))
        return True

    def _await_hello(self, ws: websocket.WebSocket) -> int:
        while True:
            raw = ws.recv()
            msg = json.loads(raw)
            if msg.get("event") == "hello":
                if not self._take_event(msg):
                    raise ConnectionError("hello out of sequence")
                return len(raw)
            if msg.get("status") == "FAIL":
                raise ConnectionError(f"authentication failed: {msg.get('error')}")

    def _take_event(self, msg: dict[str, Any]) -> bool:
        """The web client's ``onmessage`` for an event: a ``hello`` with a new connection id
        (after one was known) means the server lost our events — ``on_missed``, numbering from
        0; then the event's ``seq`` must be the next expected. False on a gap."""
        if msg.get("event") == "hello":
            data = msg.get("data") or {}
            new_id = data.get("connection_id")
            if self.connection_id and new_id != self.connection_id:
                self.server_seq = 0
                if self.on_missed is not None:
                    self.on_missed()
            self.connection_id = new_id
            self.server_version = data.get("server_version")
        if self.resume and msg.get("seq") != self.server_seq:
            return False
        self.server_seq = int(msg.get("seq") or 0) + 1
        self.events += 1
        if self.on_event is not None:
            self.on_event(msg)
        return True

    def _report(
        self,
        name: str,
        start: float,
        t0: float,
        size: int,
        exc: BaseException | None,
        status: int,
        context: dict[str, Any] | None,
    ) -> None:
        ctx = {**(context or {}), "status": status}
        self.fire(
            request_type="WS",
            name=name,
            response_time=(time.perf_counter() - t0) * 1000,
            response_length=size,
            exception=exc,
            context=ctx,
            start_time=start,
            response=None,
            url=self.url,
        )

    def _reader(self, ws: websocket.WebSocket) -> None:
        try:
            while True:
                raw = ws.recv()
                if not raw:
                    raise ConnectionError("socket closed by the server")
                msg = json.loads(raw)
                pending = self._pending_ping
                if pending and msg.get("seq_reply") == pending[0]:
                    self._pending_ping = None
                    self._report(PING_NAME, pending[1], pending[2], len(raw), None, 200, None)
                elif "event" in msg and not self._take_event(msg):
                    with contextlib.suppress(Exception):
                        ws.close(status=SEQUENCE_GAP_CLOSE)
                    raise ConnectionError(
                        f"missed event: seq {msg.get('seq')}, expected {self.server_seq}"
                    )
        except Exception as exc:
            if not self._closing and ws is self.ws:
                self.lost(exc)

    def send_action(self, action: str, data: dict[str, Any]) -> None:
        """Send a client action (``presence``, ``user_typing``…); dropped when not connected,
        as the web client drops it."""
        ws = self.ws
        if ws is None:
            return
        try:
            ws.send(json.dumps({"action": action, "seq": next(self._seq), "data": data}))
        except Exception as exc:
            self.lost(exc)

    def _ping(self, ws: websocket.WebSocket) -> None:
        """Every ping interval (a :class:`Ticker`: no greenlet per socket between pings)."""
        if ws is not self.ws:
            return
        if self._pending_ping is not None:  # no pong since the last ping: the client gives up
            seq, start, t0 = self._pending_ping
            self._pending_ping = None
            self._report(PING_NAME, start, t0, 0, TimeoutError("missed pong"), 0, None)
            with contextlib.suppress(Exception):
                ws.close(status=MISSED_PONG_CLOSE)
            self.lost(TimeoutError("missed pong"))
            return
        seq = next(self._seq)
        self._pending_ping = (seq, time.time(), time.perf_counter())
        try:
            ws.send(json.dumps({"action": "ping", "seq": seq}))
        except Exception as exc:
            self.lost(exc)

    def lost(self, exc: BaseException) -> None:
        """The socket dropped (or a connect failed): reconnect in the background with the web
        client's backoff, unless closing or already reconnecting."""
        if self.ws is not None:
            self.dropped_at = time.time()
        self.ws = None
        self._pending_ping = None
        stop_ticker(self._pings)
        if self._closing or (self._reconnecting and not self._reconnecting.dead):
            return
        self._reconnecting = gevent.spawn(self._reconnect_loop)

    def _reconnect_loop(self) -> None:
        closes = 1  # the web client's connectFailCount: the drop is the first close
        while not self._closing:
            self.last_backoff_s = self.backoff.delay(closes)
            gevent.sleep(self.last_backoff_s)
            if self._closing:
                return
            if self.connect({"page_load_context": "reconnect"}):
                self.failures += closes - 1
                if self.on_reconnect is not None:
                    self.on_reconnect()
                return
            closes += 1

    def close(self, code: int = 1000) -> None:
        """Close the socket and stop its greenlets (no reconnect)."""
        self._closing = True
        ws, self.ws = self.ws, None
        if ws is not None:
            self.dropped_at = time.time()
        stop_ticker(self._pings)
        current = gevent.getcurrent()
        for g in [*self._greenlets, self._reconnecting]:
            if g is not None and g is not current:
                g.kill(block=False)
        self._greenlets = []
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close(status=code, timeout=0.5)
