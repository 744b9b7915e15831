"""The simulator's aiohttp application: routes and what the server does around every handler.

Every route is wrapped once (:meth:`Simulator.route`) with what the real server's ``web.Handler``
does around a handler: request id and version headers, token lookup (cookie, Bearer/Token
header; ``access_token`` refused: OAuth only), the CSRF rule for cookie sessions, error
JSON, ``mattermost_api_time``.
The profile's costs are applied there too: the login limiter before anything else (refusals are
cheap and never reach the handler metrics), then the worker pool, then the handler (the login
handler adds the password hash and the mutex).

Imports go one way: ``app`` → ``handlers``/``websocket`` → ``core``/``request``/``hub`` → state
and payloads; nothing below imports ``app``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from mmload.config.sim import SimSettings
from mmload.sim import admin, webapp_handlers
from mmload.sim.core import SimCore
from mmload.sim.costs import FifoWorkerPool, GcraLimiter, PasswordChecker, PoolFull
from mmload.sim.errors import ApiError
from mmload.sim.hub import Hub
from mmload.sim.ids import new_id
from mmload.sim.metrics import SimMetrics
from mmload.sim.population import Population
from mmload.sim.request import (
    LIMIT_HEADERS,
    REQUEST_ID,
    Ctx,
    Handler,
    authenticate,
    error_response,
    limiter_key,
    origin_client,
    page_load_context,
)
from mmload.sim.state import SimState
from mmload.sim.websocket import websocket_handler

log = logging.getLogger(__name__)


class Simulator:
    """One simulated Mattermost node: the shared core plus the HTTP application."""

    def __init__(self, settings: SimSettings, population: Population | None = None):
        self.core = SimCore(settings, population)
        self.settings = settings
        self.profile = settings.profile
        rl = self.profile.login_rate_limit
        self.limiter = GcraLimiter(rl.per_sec, rl.burst) if rl else None
        g = self.profile.global_rate_limit
        self.global_limiter = (
            GcraLimiter(g.per_sec, g.max_burst, max_keys=g.memory_store_size) if g else None
        )
        wp = self.profile.worker_pool
        self.pool = FifoWorkerPool(wp) if wp else None
        # http.MaxBytesReader(MaximumPayloadSizeBytes + bytes.MinRead) around every body
        middlewares = [self._global_limit] if self.global_limiter is not None else []
        self.app = web.Application(
            client_max_size=settings.max_payload_bytes + 512, middlewares=middlewares
        )
        self._add_routes()
        self.app.on_response_prepare.append(self._add_limit_headers)
        self.app.on_shutdown.append(self._on_shutdown)

    # The parts tests and the server module read.
    @property
    def state(self) -> SimState:
        return self.core.state

    @property
    def pop(self) -> Population:
        return self.core.pop

    @property
    def metrics(self) -> SimMetrics:
        return self.core.metrics

    @property
    def hub(self) -> Hub:
        return self.core.hub

    @property
    def passwords(self) -> PasswordChecker:
        return self.core.passwords

    def set_site_url(self, url: str) -> None:
        self.core.set_site_url(url)

    async def _on_shutdown(self, _app: web.Application) -> None:
        await self.core.close()

    # -- rate limiters ----------------------------------------------------------------------
    @web.middleware
    async def _global_limit(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """The limiter the server wraps around its whole router when
        ``RateLimitSettings.Enable`` is on (the WebSocket and unknown paths included)."""
        limiter, rl = self.global_limiter, self.profile.global_rate_limit
        assert limiter is not None and rl is not None
        key = limiter_key(request, rl)
        decision = limiter.check(key)
        if decision.limited:
            self.core.metrics.rate_limited.labels("global").inc()
            return web.Response(status=429, text="limit exceeded\n", headers=decision.headers())
        request[LIMIT_HEADERS] = [decision.headers()]
        return await handler(request)

    async def _add_limit_headers(self, request: web.Request, resp: web.StreamResponse) -> None:
        """``X-RateLimit-*`` of every limiter the request passed (added, not replaced, as
        ``setRateLimitHeaders`` does: a login answer carries both limiters' values)."""
        for headers in request.get(LIMIT_HEADERS, ()):
            for name, value in headers.items():
                resp.headers.add(name, value)

    # -- the per-request wrapper ------------------------------------------------------------
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
            if rate_limited and self.limiter is not None:
                # RateLimitedHandler: keyed by the peer address only (no proxy header)
                decision = self.limiter.check(request.remote or "")
                if decision.limited:
                    self.core.metrics.rate_limited.labels("login").inc()
                    resp = web.Response(status=429, text="limit exceeded\n")
                    for headers in (*request.get(LIMIT_HEADERS, ()), decision.headers()):
                        for key, value in headers.items():
                            resp.headers.add(key, value)
                    request[LIMIT_HEADERS] = []
                    return resp
                request.setdefault(LIMIT_HEADERS, []).append(decision.headers())
            if self.pool is None:
                return await self._handle(request, name, handler, session, trust_requester)
            return await self._pooled(request, name, handler, session, trust_requester)

        self.app.router.add_route(method, path, wrapped)

    async def _pooled(self, request: web.Request, *args: Any) -> web.StreamResponse:
        pool = self.pool
        assert pool is not None
        metrics = self.core.metrics
        metrics.pool_queued.inc()
        queued = True

        async def run() -> web.StreamResponse:
            nonlocal queued
            metrics.pool_queued.dec()
            queued = False
            return await self._handle(request, *args)

        try:
            return await pool.serve(run)
        except PoolFull:
            return error_response(
                request,
                503,
                "api.context.server_busy.app_error",
                "The server is busy (simulated worker pool queue is full).",
            )
        finally:
            if queued:
                metrics.pool_queued.dec()

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
        core = self.core
        try:
            session = authenticate(core.state, request, session_required, trust_requester)
            if session is not None and self._user_limited(request, session.user.id):
                return web.Response(status=429, text="limit exceeded\n")
            resp = await handler(Ctx(request, session))
        except ApiError as err:
            resp = error_response(request, err.status, err.error_id, err.message, err.detailed)
        except Exception:  # a simulator bug: answer like the server would, log it once
            log.exception("mmload sim: %s %s failed", request.method, request.path)
            resp = error_response(request, 500, "app.internal_error", "An internal error occurred.")
        resp.headers["X-Request-Id"] = rid
        resp.headers["X-Version-Id"] = core.server_version_string
        m = core.metrics
        m.http_requests.inc()
        if resp.status >= 400:
            m.http_errors.inc()
        m.api_time.labels(
            name,
            request.method,
            str(resp.status),
            origin_client(request),
            page_load_context(request),
        ).observe(time.perf_counter() - start)
        return resp

    def _user_limited(self, request: web.Request, user_id: str) -> bool:
        """``UserIdRateLimit``: with ``VaryByUser``, the session's user id also takes a token
        from the global limiter (refusals never reach the handler metrics)."""
        rl, limiter = self.profile.global_rate_limit, self.global_limiter
        if rl is None or limiter is None or not rl.vary_by_user:
            return False
        decision = limiter.check(user_id)
        request.setdefault(LIMIT_HEADERS, []).append(decision.headers())
        if decision.limited:
            self.core.metrics.rate_limited.labels("user").inc()
        return decision.limited

    # -- routes -----------------------------------------------------------------------------
    def _add_routes(self) -> None:
        webapp_handlers.add_routes(self.core, self.route)
        admin.add_routes(self.core, self.route)
        self.app.router.add_get("/api/v4/websocket", self._ws)
        self.app.router.add_route("*", "/api/v4/{tail:.*}", self._not_found)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        return await websocket_handler(self.core, request)

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return error_response(
            request, 404, "api.context.404.app_error", "Sorry, we could not find the page."
        )
