"""The simulator's aiohttp application: routes, authentication, costs, metrics, handlers.

Every route is wrapped once (:meth:`Simulator.route`) with what the real server's ``web.Handler``
does around a handler: request id and version headers, token lookup (cookie, Bearer/Token
header; ``access_token`` refused: OAuth only), the CSRF rule for cookie sessions, error
JSON, ``mattermost_api_time``.
The profile's costs are applied there too: the login limiter before anything else (refusals are
cheap and never reach the handler metrics), then the worker pool, then the handler (the login
handler adds the password hash and the mutex).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from mmload.config.sim import SimSettings
from mmload.sim import payloads as P
from mmload.sim.costs import FifoWorkerPool, GcraLimiter, PasswordChecker, PoolFull
from mmload.sim.errors import (
    ApiError,
    bad_body,
    bad_param,
    forbidden,
    query_token_refused,
    session_expired,
)
from mmload.sim.ids import is_valid_id, new_id
from mmload.sim.metrics import SimMetrics
from mmload.sim.population import Channel, Population, User
from mmload.sim.state import Session, SimState
from mmload.sim.websocket import EMPTY_BROADCAST, Hub, event_prefix, websocket_handler

JSON = "application/json"
log = logging.getLogger(__name__)
MAX_PER_PAGE = 200
MAX_POST_SIZE = 16383
MAX_LOGIN_ATTEMPTS = 10  # ServiceSettings.MaximumLoginAttempts default
REQUEST_ID = web.RequestKey("request_id", str)
INVALID_CREDENTIALS = "api.user.login.invalid_credentials_email_username"


@dataclass(slots=True)
class Ctx:
    """What a handler gets besides the request."""

    request: web.Request
    session: Session | None

    @property
    def user(self) -> User:
        assert self.session is not None
        return self.session.user


Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]


class Simulator:
    """One simulated Mattermost node."""

    def __init__(self, settings: SimSettings, population: Population | None = None):
        self.settings = settings
        self.profile = settings.profile
        self.state = SimState(settings, population)
        self.pop = self.state.pop
        self.pop.find_login("")  # build the login index now, not during the first login
        self.metrics = SimMetrics()
        self.hub = Hub(self)
        self.passwords = PasswordChecker(self.profile)
        rl = self.profile.login_rate_limit
        self.limiter = GcraLimiter(rl) if rl else None
        wp = self.profile.worker_pool
        self.pool = FifoWorkerPool(wp) if wp else None
        self.site_url = settings.site_url or ""
        self._refresh_config()
        self.app = web.Application(client_max_size=4 * 1024 * 1024)
        self._add_routes()
        self.app.on_shutdown.append(self._on_shutdown)

    def _refresh_config(self) -> None:
        full = P.client_config(self.profile, self.site_url, True)
        self._config_full = P.dumps(full).encode()
        self._config_limited = P.dumps(P.client_config(self.profile, self.site_url, False)).encode()
        self._license = P.dumps(P.client_license()).encode()
        self.config_hash = P.config_hash(full)
        p = self.profile
        self.server_version_string = f"{p.server_version}.{p.build_number}.{self.config_hash}.false"

    def set_site_url(self, url: str) -> None:
        """Called once the listening address is known (SiteURL in the client config)."""
        if not self.settings.site_url:
            self.site_url = url
            self._refresh_config()

    async def _on_shutdown(self, _app: web.Application) -> None:
        await self.hub.close_all()
        self.passwords.close()

    # -- plumbing ---------------------------------------------------------------------------
    def token_of(self, request: web.Request) -> tuple[str | None, str]:
        """The session token and where it came from (``cookie``/``header``/``query``)."""
        cookie = request.cookies.get("MMAUTHTOKEN")
        if cookie:
            return cookie, "cookie"
        auth = request.headers.get("Authorization", "")
        kind, _, value = auth.partition(" ")
        if kind.lower() in ("bearer", "token") and value.strip():
            return value.strip(), "header"
        query = request.query.get("access_token")
        if query:
            return query, "query"
        return None, ""

    @staticmethod
    def origin_client(request: web.Request) -> str:
        """``origin_client`` label, as the server's ``GetOriginClient``: no User-Agent →
        ``unknown``; ``mobilev2=true`` or a first UA field starting ``rnbeta``/``Mattermost`` →
        ``mobile``; a last field starting ``Mattermost`` → ``desktop``; else ``web``."""
        fields = request.headers.get("User-Agent", "").split()
        if not fields:
            return "unknown"
        if request.query.get("mobilev2") == "true":
            return "mobile"
        if fields[0].startswith(("rnbeta", "Mattermost")):
            return "mobile"
        if fields[-1].startswith("Mattermost"):
            return "desktop"
        return "web"

    def error(
        self, request: web.Request, status: int, error_id: str, message: str, detailed: str = ""
    ) -> web.Response:
        rid = request.get(REQUEST_ID) or new_id()
        body = {
            "id": error_id,
            "message": message,
            "detailed_error": detailed,
            "request_id": rid,
            "status_code": status,
        }
        return web.Response(status=status, body=P.dumps(body).encode(), content_type=JSON)

    def route(
        self,
        method: str,
        path: str,
        name: str,
        handler: Handler,
        *,
        session: bool = True,
        trust_requester: bool = False,
        rate_limited: bool = False,
    ) -> None:
        """Register ``handler`` with the server's per-request behaviour around it."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            limit_headers: dict[str, str] = {}
            if rate_limited and self.limiter is not None:
                decision = self.limiter.check(request.remote or "")
                limit_headers = decision.headers()
                if decision.limited:
                    return web.Response(status=429, text="limit exceeded\n", headers=limit_headers)
            if self.pool is None:
                resp = await self._handle(request, name, handler, session, trust_requester)
            else:
                resp = await self._pooled(request, name, handler, session, trust_requester)
            resp.headers.update(limit_headers)
            return resp

        self.app.router.add_route(method, path, wrapped)

    async def _pooled(self, request: web.Request, *args: Any) -> web.StreamResponse:
        pool = self.pool
        assert pool is not None
        self.metrics.pool_queued.inc()
        queued = True

        async def run() -> web.StreamResponse:
            nonlocal queued
            self.metrics.pool_queued.dec()
            queued = False
            return await self._handle(request, *args)

        try:
            return await pool.serve(run)
        except PoolFull:
            return self.error(
                request,
                503,
                "api.context.server_busy.app_error",
                "The server is busy (simulated worker pool queue is full).",
            )
        finally:
            if queued:
                self.metrics.pool_queued.dec()

    async def _handle(
        self,
        request: web.Request,
        name: str,
        handler: Handler,
        session_required: bool,
        trust_requester: bool,
    ) -> web.StreamResponse:
        start = time.perf_counter()
        rid = new_id()
        request[REQUEST_ID] = rid
        try:
            ctx = Ctx(request, self._authenticate(request, session_required, trust_requester))
            resp = await handler(ctx)
        except ApiError as err:
            resp = self.error(request, err.status, err.error_id, err.message, err.detailed)
        except Exception:  # a simulator bug: answer like the server would, log it once
            log.exception("mmload sim: %s %s failed", request.method, request.path)
            resp = self.error(request, 500, "app.internal_error", "An internal error occurred.")
        resp.headers["X-Request-Id"] = rid
        resp.headers["X-Version-Id"] = self.server_version_string
        m = self.metrics
        m.http_requests.inc()
        if resp.status >= 400:
            m.http_errors.inc()
        m.api_time.labels(
            name,
            request.method,
            str(resp.status),
            self.origin_client(request),
            request.headers.get("X-Page-Load-Context", ""),
        ).observe(time.perf_counter() - start)
        return resp

    def _authenticate(
        self, request: web.Request, required: bool, trust_requester: bool
    ) -> Session | None:
        token, source = self.token_of(request)
        if token is None:
            if required:
                raise session_expired("UserRequired")
            return None
        session = self.state.session(token)
        if session is None:
            if required:
                raise session_expired("token not found")
            return None
        if source == "query":  # only OAuth sessions may use access_token (none here)
            raise query_token_refused()
        csrf_checked = required and not trust_requester and request.method != "GET"
        if source == "cookie" and csrf_checked:
            csrf = request.headers.get("X-CSRF-Token")
            xrw = request.headers.get("X-Requested-With") == "XMLHttpRequest"
            if csrf != session.csrf and not xrw:
                raise session_expired("Appears to be a CSRF attempt")
        return session

    # -- helpers used by handlers --------------------------------------------------------------
    def user_param(self, ctx: Ctx, *, self_only: bool = True) -> User:
        """``{user_id}`` (``me`` allowed); other users only when ``self_only`` is False."""
        raw = ctx.request.match_info["user_id"]
        if raw == "me":
            return ctx.user
        if not is_valid_id(raw):
            raise bad_param("user_id")
        if self_only and raw != ctx.user.id:
            raise forbidden()
        user = self.pop.by_id.get(raw)
        if user is None:
            raise ApiError(404, "app.user.missing_account.const", "Unable to find the user.")
        return user

    def team_param(self, ctx: Ctx, user: User) -> int:
        raw = ctx.request.match_info["team_id"]
        if not is_valid_id(raw):
            raise bad_param("team_id")
        team = self.pop.teams[user.team]
        if raw != team.id:
            raise forbidden()
        return team.index

    def channel_param(self, ctx: Ctx) -> Channel:
        """``{channel_id}``: a channel the session's user may read."""
        raw = ctx.request.match_info["channel_id"]
        if not is_valid_id(raw):
            raise bad_param("channel_id")
        channel = self.state.channel(raw)
        if channel is None:
            raise ApiError(
                404, "app.channel.get.existing.app_error", "Unable to find the existing channel."
            )
        if not self.state.can_read(ctx.user, channel):
            raise forbidden()
        return channel

    def channel_json(self, channel: Channel) -> dict[str, Any]:
        cs = self.state.channel_state[channel.id]
        team_id = self.pop.teams[channel.team].id if channel.team >= 0 else ""
        return P.channel_body(channel, team_id, cs.last_post_at, cs.total_msg_count)

    def member_json(self, user: User, channel: Channel) -> dict[str, Any]:
        m = self.state.membership(user, channel.id)
        return P.channel_member_body(channel.id, user.id, m.last_viewed_at, m.msg_count)

    async def json_body(self, ctx: Ctx, what: str) -> Any:
        try:
            return await ctx.request.json(loads=json.loads)
        except (ValueError, UnicodeDecodeError):
            raise bad_body(what) from None

    def _add_routes(self) -> None:
        from mmload.sim import handlers

        handlers.add_routes(self)
        self.app.router.add_get("/api/v4/websocket", self._ws)
        self.app.router.add_route("*", "/api/v4/{tail:.*}", self._not_found)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        return await websocket_handler(self, request)

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return self.error(
            request, 404, "api.context.404.app_error", "Sorry, we could not find the page."
        )

    # -- broadcasts ------------------------------------------------------------------------
    async def broadcast_to_channel(self, channel: Channel, event: str, data: dict[str, Any]) -> int:
        """Send ``event`` to every connected member of ``channel``."""
        if not self.hub.by_user:
            self.metrics.ws_broadcasts.labels(event).inc()
            return 0
        prefix = event_prefix(event, data, {**EMPTY_BROADCAST, "channel_id": channel.id})
        connected = self.hub.by_user
        if len(connected) < len(channel.members):  # walk the smaller set
            pop = self.pop
            numbers = [n for n in connected if pop.is_member(pop.user(n), channel)]
        else:
            numbers = channel.members
        return await self.hub.to_users(numbers, event, prefix)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=P.dumps(body).encode(), content_type=JSON)


def raw_json(data: bytes, status: int = 200) -> web.Response:
    return web.Response(status=status, body=data, content_type=JSON)


def set_login_cookies(resp: web.Response, session: Session, secure: bool, max_age: int) -> None:
    """``MMAUTHTOKEN`` (HttpOnly), ``MMUSERID`` and ``MMCSRF``, as ``AttachSessionCookies``."""
    expires = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + max_age))
    common = {"path": "/", "max_age": str(max_age), "expires": expires, "samesite": "Lax"}
    if secure:
        common["secure"] = "true"
    resp.set_cookie("MMAUTHTOKEN", session.token, httponly=True, **common)
    resp.set_cookie("MMUSERID", session.user.id, **common)
    resp.set_cookie("MMCSRF", session.csrf, **common)


def clear_login_cookies(resp: web.Response) -> None:
    for name in ("MMAUTHTOKEN", "MMUSERID", "MMCSRF"):
        resp.del_cookie(name, path="/")


__all__ = ["ApiError", "Ctx", "Simulator", "bad_body", "bad_param", "forbidden"]
