"""The WebSocket hub: connected sockets by user, per-connection event numbering, broadcasts, and
the server's "reliable WebSocket" resume (``platform/web_conn.go``, ``web_hub.go``).

Broadcast events are serialised once; only the per-connection ``seq`` is appended per socket.

Resume: every connection keeps its last ``dead_queue_size`` sent events (the server's dead
queue, 128). When an authenticated socket closes, its connection is *parked* — kept in the hub,
inactive, still receiving its events into a send queue (256) — until it is resumed, its queue
overflows (the server's ``closeAndRemoveConn``) or it has been parked ``inactive_timeout_s``
(the 5-minute reaper). A reconnect with that ``connection_id`` takes it over without a
``hello``: events from ``sequence_number`` still in the dead queue are replayed with their
numbers, then the queued ones follow; a ``sequence_number`` that fell out of the dead queue
(message loss) gets a new connection id and a ``hello`` at seq 0, as the server's write pump.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from mmload.sim.metrics import SimMetrics
from mmload.sim.payloads import EMPTY_BROADCAST, dumps, event_prefix
from mmload.sim.population import Channel, Population, User
from mmload.sim.state import Session

Sent = deque[tuple[int, str]]  # (seq, serialised event without its seq)
MAX_PARKED_PER_USER = 16  # a simulator bound: a user's oldest parked connection goes first


@dataclass(eq=False)
class Conn:
    """One WebSocket connection."""

    ws: web.WebSocketResponse
    request: web.Request
    connection_id: str
    origin_client: str
    dead_size: int = 128
    session: Session | None = None
    seq: int = 0
    closed: bool = False
    posted_ack: bool = False
    dead: Sent | None = None  # created at the first event: most sockets get few
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def send_event(self, prefix: str) -> None:
        """Send an event serialised as ``prefix`` (everything but ``seq``), numbering it."""
        if self.closed:
            return
        seq = self.seq
        self.seq += 1
        if self.dead is None:
            self.dead = deque(maxlen=self.dead_size)
        self.dead.append((seq, prefix))
        await self._write(f"{prefix}{seq}}}")

    async def replay(self, seq: int, prefix: str) -> None:
        """Re-send a dead-queue event with its own number (``drainDeadQueue``)."""
        self.seq = seq + 1
        await self._write(f"{prefix}{seq}}}")

    async def reply(self, body: dict[str, Any]) -> None:
        await self._write(dumps(body))

    async def _write(self, text: str) -> None:
        if self.closed:
            return
        try:
            await self.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            self.closed = True


@dataclass(eq=False)
class Parked:
    """A closed connection kept for resume: its numbering, dead queue and queued events."""

    user_number: int
    connection_id: str
    next_seq: int
    dead: Sent | None
    parked_at: float
    pending: list[str] = field(default_factory=list)


class Hub:
    """Connected, authenticated sockets by user number; broadcasts to channel members."""

    def __init__(
        self,
        pop: Population,
        metrics: SimMetrics,
        *,
        send_queue_size: int = 256,
        inactive_timeout_s: float = 300.0,
        clock=time.monotonic,
    ):
        self.pop = pop
        self.metrics = metrics
        self.by_user: dict[int, list[Conn]] = {}
        self.all: set[Conn] = set()
        self.parked: OrderedDict[str, Parked] = OrderedDict()  # oldest first
        self.parked_by_user: dict[int, list[Parked]] = {}
        self.send_queue_size = send_queue_size
        self.inactive_timeout_s = inactive_timeout_s
        self.clock = clock

    # -- connections ------------------------------------------------------------------------
    def register(self, conn: Conn) -> None:
        assert conn.session is not None
        self.by_user.setdefault(conn.session.user.number, []).append(conn)
        self.metrics.websockets.labels(conn.origin_client).inc()

    def unregister(self, conn: Conn, *, keep: bool = True) -> None:
        """Remove a closed connection; an authenticated one is parked for resume."""
        if conn.session is None:
            return
        number = conn.session.user.number
        conns = self.by_user.get(number)
        if conns and conn in conns:
            conns.remove(conn)
            if not conns:
                del self.by_user[number]
            self.metrics.websockets.labels(conn.origin_client).dec()
            if keep:
                self._park(Parked(number, conn.connection_id, conn.seq, conn.dead, self.clock()))

    def _park(self, parked: Parked) -> None:
        self._expire()
        self.parked[parked.connection_id] = parked
        mine = self.parked_by_user.setdefault(parked.user_number, [])
        mine.append(parked)
        if len(mine) > MAX_PARKED_PER_USER:
            self._forget(mine[0])

    def _forget(self, parked: Parked) -> None:
        self.parked.pop(parked.connection_id, None)
        mine = self.parked_by_user.get(parked.user_number)
        if mine and parked in mine:
            mine.remove(parked)
            if not mine:
                del self.parked_by_user[parked.user_number]

    def _expire(self) -> None:
        """The inactive-connection reaper: parked longer than the timeout is gone."""
        limit = self.clock() - self.inactive_timeout_s
        while self.parked:
            oldest = next(iter(self.parked.values()))
            if oldest.parked_at > limit:
                return
            self._forget(oldest)

    def take_parked(self, user: User, connection_id: str) -> Parked | None:
        """``CheckConn``: the user's parked connection with this id, removed from the hub."""
        self._expire()
        parked = self.parked.get(connection_id)
        if parked is None or parked.user_number != user.number:
            return None
        self._forget(parked)
        return parked

    # -- sending ----------------------------------------------------------------------------
    async def to_users(
        self,
        numbers: list[int],
        event: str,
        prefix: str,
        *,
        ack_prefix: str | None = None,
        author: int = 0,
    ) -> int:
        """Send ``prefix`` to every connection of ``numbers`` (``ack_prefix`` to those that
        asked for ``posted_ack``, but the author); queue it for their parked connections.
        Returns the number of open sockets reached."""
        sent = 0
        by_user, parked_by_user = self.by_user, self.parked_by_user
        for number in numbers:
            for conn in by_user.get(number, ()):
                use = ack_prefix if ack_prefix and conn.posted_ack and number != author else prefix
                await conn.send_event(use)
                sent += 1
            for parked in parked_by_user.get(number, ()):
                parked.pending.append(prefix)
            if number in parked_by_user:
                for parked in list(parked_by_user[number]):
                    if len(parked.pending) > self.send_queue_size:
                        self._forget(parked)  # the queue is full: the connection is dropped
        self.metrics.ws_broadcasts.labels(event).inc()
        return sent

    def _members_reachable(self, channel: Channel) -> list[int]:
        """Channel members with an open or parked connection, walking the smaller set."""
        connected = self.by_user
        if self.parked_by_user:  # rare: only while closed connections await their resume
            connected = self.by_user.keys() | self.parked_by_user.keys()
        if len(connected) < len(channel.members):
            pop = self.pop
            return [n for n in connected if pop.is_member(pop.user(n), channel)]
        return channel.members

    async def to_channel(
        self, channel: Channel, event: str, data: dict[str, Any], *, author: User | None = None
    ) -> int:
        """Send ``event`` to every connected member of ``channel``. A ``posted`` event in a
        direct channel carries ``should_ack`` for sockets opened with ``posted_ack=true``
        (``postedAckBroadcastHook``: always for direct channels, never to the author)."""
        if not self.by_user and not self.parked_by_user:
            self.metrics.ws_broadcasts.labels(event).inc()
            return 0
        broadcast = {**EMPTY_BROADCAST, "channel_id": channel.id}
        prefix = event_prefix(event, data, broadcast)
        ack_prefix = None
        if event == "posted" and channel.type == "D":
            ack_prefix = event_prefix(event, {**data, "should_ack": True}, broadcast)
        numbers = self._members_reachable(channel)
        return await self.to_users(
            numbers, event, prefix, ack_prefix=ack_prefix, author=author.number if author else 0
        )

    async def to_user(self, user: User, event: str, data: dict[str, Any]) -> int:
        """Send ``event`` to every connection of ``user`` (drafts, own-device sync)."""
        prefix = event_prefix(event, data, {**EMPTY_BROADCAST, "user_id": user.id})
        return await self.to_users([user.number], event, prefix)

    async def typing(self, channel: Channel, user: User, parent_id: str) -> int:
        """``typing`` to the channel's connected members but the typist (``omit_users``)."""
        data = {"parent_id": parent_id, "user_id": user.id}
        broadcast = {**EMPTY_BROADCAST, "channel_id": channel.id, "omit_users": {user.id: True}}
        prefix = event_prefix("typing", data, broadcast)
        pop = self.pop
        numbers = [
            n for n in self.by_user if n != user.number and pop.is_member(pop.user(n), channel)
        ]
        return await self.to_users(numbers, "typing", prefix)

    async def close_all(self) -> None:
        for conn in list(self.all):
            conn.closed = True
            await conn.ws.close(code=1001, message=b"server shutting down")
