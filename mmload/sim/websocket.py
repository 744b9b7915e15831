"""``GET /api/v4/websocket``: Mattermost's WebSocket protocol (``platform/web_conn.go``, ``wsapi``).

- auth on the upgrade (MMAUTHTOKEN cookie or ``Authorization`` header) or by
  the ``authentication_challenge`` action; a socket still unauthenticated after
  ``ws_auth_timeout_s`` (5 s, ``authCheckInterval``) is dropped without a close frame, as the
  real server closes the TCP connection;
- the ``hello`` event (``connection_id``, ``server_version``), events numbered by ``seq`` from 0;
- actions answered with ``{"status", "seq_reply", "data"|"error"}``: ``ping`` → ``pong``;
- server ping frames every ``ws_ping_interval_s`` (60 s).

Broadcast events are serialised once; only the per-connection ``seq`` is appended per socket.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from mmload.sim.errors import query_token_refused
from mmload.sim.ids import new_id
from mmload.sim.payloads import dumps

if TYPE_CHECKING:
    from mmload.sim.app import Simulator
    from mmload.sim.state import Session

HOSTNAME = socket.gethostname()  # os.Hostname() on the real server

EMPTY_BROADCAST = {
    "omit_users": None,
    "user_id": "",
    "channel_id": "",
    "team_id": "",
    "connection_id": "",
    "omit_connection_id": "",
}


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


def event_prefix(event: str, data: dict[str, Any], broadcast: dict[str, Any]) -> str:
    """``{"event":…,"data":…,"broadcast":…,"seq":`` — the caller appends the number and ``}``."""
    return f'{{"event":{dumps(event)},"data":{dumps(data)},"broadcast":{dumps(broadcast)},"seq":'


class Hub:
    """Connected, authenticated sockets by user number; broadcasts to channel members."""

    def __init__(self, sim: Simulator):
        self.sim = sim
        self.by_user: dict[int, list[Conn]] = {}
        self.all: set[Conn] = set()

    def register(self, conn: Conn) -> None:
        assert conn.session is not None
        self.by_user.setdefault(conn.session.user.number, []).append(conn)
        self.sim.metrics.websockets.labels(conn.origin_client).inc()

    def unregister(self, conn: Conn) -> None:
        if conn.session is None:
            return
        conns = self.by_user.get(conn.session.user.number)
        if conns and conn in conns:
            conns.remove(conn)
            if not conns:
                del self.by_user[conn.session.user.number]
            self.sim.metrics.websockets.labels(conn.origin_client).dec()

    async def to_users(self, numbers: list[int], event: str, prefix: str) -> int:
        """Send ``prefix`` to every connection of ``numbers``; count the sockets reached."""
        sent = 0
        by_user = self.by_user
        for number in numbers:
            for conn in by_user.get(number, ()):
                await conn.send_event(prefix)
                sent += 1
        self.sim.metrics.ws_broadcasts.labels(event).inc()
        return sent

    async def close_all(self) -> None:
        for conn in list(self.all):
            conn.closed = True
            await conn.ws.close(code=1001, message=b"server shutting down")


async def websocket_handler(sim: Simulator, request: web.Request) -> web.StreamResponse:
    """Upgrade, authenticate, say hello, answer actions until the socket closes."""
    settings = sim.settings
    # No permessage-deflate: each zlib context costs ~260 KB, and 15,000 sockets must fit.
    ws = web.WebSocketResponse(heartbeat=settings.ws_ping_interval_s, autoping=True, compress=False)
    if not ws.can_prepare(request).ok:
        return sim.error(
            request,
            400,
            "api.web_socket.connect.upgrade.app_error",
            "Failed to upgrade websocket connection.",
        )
    token, source = sim.token_of(request)
    session = sim.state.session(token)
    if session is not None and source == "query":
        err = query_token_refused()
        return sim.error(request, err.status, err.error_id, err.message)
    await ws.prepare(request)
    conn = Conn(ws, request, new_id(), sim.origin_client(request))
    sim.hub.all.add(conn)
    timer: asyncio.TimerHandle | None = None
    try:
        if session is not None:
            await authenticate(sim, conn, session)
        else:
            timer = asyncio.get_running_loop().call_later(
                settings.ws_auth_timeout_s, drop_if_unauthenticated, conn
            )
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await on_action(sim, conn, msg.data)
            elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    finally:
        if timer is not None:
            timer.cancel()
        conn.closed = True
        sim.hub.all.discard(conn)
        sim.hub.unregister(conn)
    return ws


def drop_if_unauthenticated(conn: Conn) -> None:
    """The real server closes the TCP connection of a socket unauthenticated at the first
    ``authCheckInterval`` tick (no close frame: the client sees 1006)."""
    if conn.session is None:
        drop(conn)


def drop(conn: Conn) -> None:
    """Close the TCP connection without a WebSocket close frame."""
    if not conn.closed:
        conn.closed = True
        transport = conn.request.transport
        if transport is not None:
            transport.close()


async def authenticate(sim: Simulator, conn: Conn, session: Session) -> None:
    """Attach the session, register with the hub and send ``hello``."""
    conn.session = session
    sim.hub.register(conn)
    sim.state.set_status(session.user, "online")
    data = {
        "connection_id": conn.connection_id,
        "server_hostname": HOSTNAME,
        "server_version": sim.server_version_string,
    }
    await conn.send_event(
        event_prefix("hello", data, {**EMPTY_BROADCAST, "user_id": session.user.id})
    )


async def on_action(sim: Simulator, conn: Conn, text: str) -> None:
    """One client action: ``{"action": …, "seq": N, "data": {…}}`` (``WebSocketRouter``)."""
    try:
        req = json.loads(text)
        action, seq = req.get("action", ""), req.get("seq", 0)
        data = req.get("data") or {}
    except (ValueError, TypeError, AttributeError):
        return  # the real server ignores frames it cannot decode
    if not isinstance(seq, int):
        seq = 0
    if not action:
        await conn.reply(
            fail(seq, "api.web_socket_router.no_action.app_error", "No websocket action.", 400)
        )
    elif seq <= 0:
        await conn.reply(
            fail(
                seq,
                "api.web_socket_router.bad_seq.app_error",
                "Invalid sequence for WebSocket message.",
                400,
            )
        )
    elif action == "authentication_challenge":
        await on_challenge(sim, conn, seq, data)
    elif conn.session is None:
        await conn.reply(
            fail(
                seq,
                "api.web_socket_router.not_authenticated.app_error",
                "No websocket session, please log in.",
            )
        )
    elif action == "ping":
        pong = {
            "text": "pong",
            "version": sim.profile.server_version,
            "server_time": time.time_ns() // 1_000_000,
            "node_id": "",
        }
        await conn.reply({"status": "OK", "seq_reply": seq, "data": pong})
    elif action in ("user_typing", "presence"):
        await conn.reply({"status": "OK", "seq_reply": seq})
    elif action in ("get_statuses", "get_statuses_by_ids"):
        ids = data.get("user_ids") if isinstance(data, dict) else None
        ids = ids if isinstance(ids, list) else list(sim.state.statuses)
        statuses = {uid: sim.state.status_of(uid)["status"] for uid in ids if isinstance(uid, str)}
        await conn.reply({"status": "OK", "seq_reply": seq, "data": statuses})
    else:
        await conn.reply(
            fail(
                seq, "api.web_socket_router.bad_action.app_error", "Invalid websocket action.", 500
            )
        )


async def on_challenge(sim: Simulator, conn: Conn, seq: int, data: Any) -> None:
    """``authentication_challenge``: ignored once authenticated; a missing or bad token drops
    the connection (TCP close, no close frame, as gorilla's ``Conn.Close``)."""
    if conn.session is not None:
        return
    token = data.get("token") if isinstance(data, dict) else None
    session = sim.state.session(token if isinstance(token, str) else None)
    if session is None:
        drop(conn)
        return
    await authenticate(sim, conn, session)
    await conn.reply({"status": "OK", "seq_reply": seq})


def fail(seq: int, error_id: str, message: str, status_code: int = 401) -> dict[str, Any]:
    """An action's error reply (the AppError shape inside ``error``)."""
    error = {"id": error_id, "message": message, "detailed_error": "", "status_code": status_code}
    return {"status": "FAIL", "seq_reply": seq, "error": error}
