"""``GET /api/v4/websocket``: Mattermost's WebSocket protocol (``platform/web_conn.go``, ``wsapi``).

- auth on the upgrade (MMAUTHTOKEN cookie or ``Authorization`` header) or by
  the ``authentication_challenge`` action; a socket still unauthenticated after
  ``ws_auth_timeout_s`` (5 s, ``authCheckInterval``) is dropped without a close frame, as the
  real server closes the TCP connection;
- the ``hello`` event (``connection_id``, ``server_version``), events numbered by ``seq`` from 0;
- actions answered with ``{"status", "seq_reply", "data"|"error"}``: ``ping`` → ``pong``;
- server ping frames every ``ws_ping_interval_s`` (60 s).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import WSMsgType, web

from mmload.sim import payloads as P
from mmload.sim.core import SimCore
from mmload.sim.errors import query_token_refused
from mmload.sim.hub import Conn, Parked
from mmload.sim.ids import is_valid_id, new_id
from mmload.sim.request import error_response, origin_client, token_of
from mmload.sim.state import Session

HOSTNAME = socket.gethostname()  # os.Hostname() on the real server
SOCKET_MAX_MESSAGE_BYTES = 8 * 1024  # model.SocketMaxMessageSizeKb: the read limit per frame


async def websocket_handler(core: SimCore, request: web.Request) -> web.StreamResponse:
    """Upgrade, authenticate, say hello, answer actions until the socket closes."""
    settings = core.settings
    # No permessage-deflate: each zlib context costs ~260 KB, and 15,000 sockets must fit.
    ws = web.WebSocketResponse(
        heartbeat=settings.ws_ping_interval_s,
        autoping=True,
        compress=False,
        max_msg_size=SOCKET_MAX_MESSAGE_BYTES,
    )
    if not ws.can_prepare(request).ok:
        return error_response(
            request,
            400,
            "api.web_socket.connect.upgrade.app_error",
            "Failed to upgrade websocket connection.",
        )
    token, source = token_of(request)
    session = core.state.session(token)
    if session is not None and source == "query":
        err = query_token_refused()
        return error_response(request, err.status, err.error_id, err.message)
    await ws.prepare(request)
    conn = Conn(ws, request, new_id(), origin_client(request), settings.ws_dead_queue_size)
    conn.posted_ack = request.query.get("posted_ack") == "true"
    core.hub.all.add(conn)
    timer: asyncio.TimerHandle | None = None
    try:
        if session is not None:
            if not await connect(core, conn, session, request.query):
                drop(conn)
                return ws
        else:
            timer = asyncio.get_running_loop().call_later(
                settings.ws_auth_timeout_s, drop_if_unauthenticated, conn
            )
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await on_action(core, conn, msg.data)
            elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    finally:
        if timer is not None:
            timer.cancel()
        conn.closed = True
        core.hub.all.discard(conn)
        core.hub.unregister(conn)
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


async def connect(core: SimCore, conn: Conn, session: Session, query: Mapping[str, str]) -> bool:
    """``connectWebSocket`` with a session on the upgrade: resume the parked connection named
    by ``connection_id`` (``PopulateWebConnConfig``) or start fresh with a ``hello``. False when
    the server would close the socket (an invalid id, or a missing/invalid sequence number for
    a connection it still has)."""
    wanted = query.get("connection_id", "")
    if not wanted:
        await authenticate(core, conn, session)
        return True
    if not is_valid_id(wanted):
        return False
    parked = core.hub.take_parked(session.user, wanted)
    if parked is None:  # timed out, dropped, or another node's: a new connection id
        await authenticate(core, conn, session)
        return True
    raw = query.get("sequence_number", "")
    if not raw.isdigit():
        return False
    await resume(core, conn, session, parked, int(raw))
    return True


async def resume(core: SimCore, conn: Conn, session: Session, parked: Parked, seq: int) -> None:
    """Take over a parked connection: no ``hello``; replay from ``seq`` if the dead queue still
    has it, else (message loss) a new connection id and a ``hello``; then the queued events."""
    conn.session = session
    conn.connection_id = parked.connection_id
    conn.dead = parked.dead
    conn.seq = seq
    core.hub.register(conn)
    await core.store.save_status(core.state.set_status(session.user, "online"))
    if seq != 0:
        dead = list(parked.dead or ())
        start = next((i for i, (s, _) in enumerate(dead) if s == seq), None)
        if start is not None:
            for s, prefix in dead[start:]:
                await conn.replay(s, prefix)
            core.metrics.ws_reconnects.labels("success").inc()
        elif dead and dead[-1][0] != seq - 1:
            conn.connection_id, conn.seq, conn.dead = new_id(), 0, None
            await send_hello(core, conn, session)
            core.metrics.ws_reconnects.labels("failure").inc()
        else:
            core.metrics.ws_reconnects.labels("lossless").inc()
    for prefix in parked.pending:
        await conn.send_event(prefix)


async def send_hello(core: SimCore, conn: Conn, session: Session) -> None:
    data = P.hello_data(conn.connection_id, HOSTNAME, core.server_version_string)
    await conn.send_event(
        P.event_prefix("hello", data, {**P.EMPTY_BROADCAST, "user_id": session.user.id})
    )


async def authenticate(core: SimCore, conn: Conn, session: Session) -> None:
    """Attach the session, register with the hub and send ``hello``."""
    conn.session = session
    core.hub.register(conn)
    await core.store.save_status(core.state.set_status(session.user, "online"))
    await send_hello(core, conn, session)


async def on_action(core: SimCore, conn: Conn, text: str) -> None:
    """One client action: ``{"action": …, "seq": N, "data": {…}}`` (``WebSocketRouter``)."""
    try:
        req = json.loads(text)
        action, seq = req.get("action", ""), req.get("seq", 0)
        data = req.get("data") or {}
    except (ValueError, TypeError, AttributeError, RecursionError):
        drop(conn)  # readPump returns on a decode error: the server closes the connection
        return
    if not isinstance(seq, int):
        seq = 0
    if not action:
        await conn.reply(
            P.ws_fail(seq, "api.web_socket_router.no_action.app_error", "No websocket action.", 400)
        )
    elif seq <= 0:
        await conn.reply(
            P.ws_fail(
                seq,
                "api.web_socket_router.bad_seq.app_error",
                "Invalid sequence for WebSocket message.",
                400,
            )
        )
    elif action == "authentication_challenge":
        await on_challenge(core, conn, seq, data)
    elif conn.session is None:
        await conn.reply(
            P.ws_fail(
                seq,
                "api.web_socket_router.not_authenticated.app_error",
                "No websocket session, please log in.",
            )
        )
    elif action == "ping":
        now = time.time_ns() // 1_000_000
        await conn.reply(P.pong_reply(seq, core.profile.server_version, now))
    elif action == "user_typing":
        await on_typing(core, conn, seq, data)
    elif action in ("presence", "posted_notify_ack"):
        await conn.reply(P.ws_ok(seq))
    elif action in ("get_statuses", "get_statuses_by_ids"):
        ids = data.get("user_ids") if isinstance(data, dict) else None
        ids = ids if isinstance(ids, list) else list(core.state.statuses)
        statuses = {uid: core.state.status_of(uid)["status"] for uid in ids if isinstance(uid, str)}
        await conn.reply(P.ws_ok(seq, statuses))
    else:
        await conn.reply(
            P.ws_fail(
                seq, "api.web_socket_router.bad_action.app_error", "Invalid websocket action.", 500
            )
        )


async def on_typing(core: SimCore, conn: Conn, seq: int, data: Any) -> None:
    """``user_typing`` ``{channel_id, parent_id}``: a ``typing`` event to the channel's other
    connected members, then OK (a channel the user cannot read: an error reply)."""
    assert conn.session is not None
    user = conn.session.user
    cid = data.get("channel_id") if isinstance(data, dict) else None
    channel = core.state.channel(cid) if isinstance(cid, str) else None
    if channel is None or not core.state.can_read(user, channel):
        await conn.reply(
            P.ws_fail(seq, "api.websocket_handler.invalid_param.app_error", "Invalid channel_id.")
        )
        return
    parent = data.get("parent_id") if isinstance(data.get("parent_id"), str) else ""
    await core.hub.typing(channel, user, parent)
    await conn.reply(P.ws_ok(seq))


async def on_challenge(core: SimCore, conn: Conn, seq: int, data: Any) -> None:
    """``authentication_challenge``: ignored once authenticated; a missing or bad token drops
    the connection (TCP close, no close frame, as gorilla's ``Conn.Close``)."""
    if conn.session is not None:
        return
    token = data.get("token") if isinstance(data, dict) else None
    session = core.state.session(token if isinstance(token, str) else None)
    if session is None:
        drop(conn)
        return
    await authenticate(core, conn, session)
    await conn.reply(P.ws_ok(seq))
