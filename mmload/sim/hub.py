"""The WebSocket hub: connected sockets by user, per-connection event numbering, broadcasts.

Broadcast events are serialised once; only the per-connection ``seq`` is appended per socket.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from mmload.sim.metrics import SimMetrics
from mmload.sim.payloads import EMPTY_BROADCAST, dumps, event_prefix
from mmload.sim.population import Channel, Population, User
from mmload.sim.state import Session


@dataclass(eq=False)
class Conn:
    """One WebSocket connection."""

    ws: web.WebSocketResponse
    request: web.Request
    connection_id: str
    origin_client: str
    session: Session | None = None
    seq: int = 0
    closed: bool = False
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def send_event(self, prefix: str) -> None:
        """Send an event serialised as ``prefix`` (everything but ``seq``), numbering it."""
        if self.closed:
            return
        seq = self.seq
        self.seq += 1
        try:
            await self.ws.send_str(f"{prefix}{seq}}}")
        except (ConnectionError, RuntimeError):
            self.closed = True

    async def reply(self, body: dict[str, Any]) -> None:
        if not self.closed:
            try:
                await self.ws.send_str(dumps(body))
            except (ConnectionError, RuntimeError):
                self.closed = True


class Hub:
    """Connected, authenticated sockets by user number; broadcasts to channel members."""

    def __init__(self, pop: Population, metrics: SimMetrics):
        self.pop = pop
        self.metrics = metrics
        self.by_user: dict[int, list[Conn]] = {}
        self.all: set[Conn] = set()

    def register(self, conn: Conn) -> None:
        assert conn.session is not None
        self.by_user.setdefault(conn.session.user.number, []).append(conn)
        self.metrics.websockets.labels(conn.origin_client).inc()

    def unregister(self, conn: Conn) -> None:
        if conn.session is None:
            return
        conns = self.by_user.get(conn.session.user.number)
        if conns and conn in conns:
            conns.remove(conn)
            if not conns:
                del self.by_user[conn.session.user.number]
            self.metrics.websockets.labels(conn.origin_client).dec()

    async def to_users(self, numbers: list[int], event: str, prefix: str) -> int:
        """Send ``prefix`` to every connection of ``numbers``; count the sockets reached."""
        sent = 0
        by_user = self.by_user
        for number in numbers:
            for conn in by_user.get(number, ()):
                await conn.send_event(prefix)
                sent += 1
        self.metrics.ws_broadcasts.labels(event).inc()
        return sent

    async def to_channel(self, channel: Channel, event: str, data: dict[str, Any]) -> int:
        """Send ``event`` to every connected member of ``channel``."""
        if not self.by_user:
            self.metrics.ws_broadcasts.labels(event).inc()
            return 0
        prefix = event_prefix(event, data, {**EMPTY_BROADCAST, "channel_id": channel.id})
        connected = self.by_user
        if len(connected) < len(channel.members):  # walk the smaller set
            pop = self.pop
            numbers = [n for n in connected if pop.is_member(pop.user(n), channel)]
        else:
            numbers = channel.members
        return await self.to_users(numbers, event, prefix)

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
