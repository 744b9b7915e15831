"""Per-request helpers shared by the HTTP handlers, the WebSocket and the app's route wrapper.

What the real server's ``web.Context`` gives a handler: the session (``Ctx``), token lookup in the
server's order, ``GetOriginClient``, the error JSON, session cookies, query and body parsing. This
module sits below ``handlers``, ``websocket`` and ``app``; it imports none of them.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from mmload.config.sim import GlobalRateLimit
from mmload.sim import payloads as P
from mmload.sim.errors import (
    ApiError,
    bad_body,
    bad_param,
    query_token_refused,
    session_expired,
)
from mmload.sim.ids import new_id
from mmload.sim.population import User
from mmload.sim.state import Session, SimState

JSON = "application/json"
REQUEST_ID = web.RequestKey("request_id", str)
LIMIT_HEADERS = web.RequestKey("limit_headers", list)
PAGE_LOAD_CONTEXTS = frozenset({"page_load", "reconnect"})  # what recordMetrics keeps


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


class Router(Protocol):
    """Registers a handler with the server's per-request behaviour around it (``app.route``)."""

    def __call__(
        self,
        method: str,
        path: str,
        name: str,
        handler: Handler,
        *,
        session: bool = True,
        trust_requester: bool = False,
        rate_limited: bool = False,
    ) -> None: ...


# -- responses ---------------------------------------------------------------------------------
def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=P.dumps(body).encode(), content_type=JSON)


def raw_json(data: bytes, status: int = 200) -> web.Response:
    return web.Response(status=status, body=data, content_type=JSON)


def error_response(
    request: web.Request, status: int, error_id: str, message: str, detailed: str = ""
) -> web.Response:
    """Mattermost's error JSON with this request's id."""
    rid = request.get(REQUEST_ID) or new_id()
    body = P.app_error_body(error_id, message, detailed, rid, status)
    return web.Response(status=status, body=P.dumps(body).encode(), content_type=JSON)


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


# -- who is asking -----------------------------------------------------------------------------
def token_of(request: web.Request) -> tuple[str | None, str]:
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


def page_load_context(request: web.Request) -> str:
    """The ``page_load_context`` label: the web app's two contexts, anything else ``""`` — the
    server's ``recordMetrics`` rule, so a client cannot grow the label set."""
    value = request.headers.get("X-Page-Load-Context", "")
    return value if value in PAGE_LOAD_CONTEXTS else ""


def client_ip(request: web.Request, trusted_headers: list[str]) -> str:
    """``utils.GetIPAddress``: the first address of the first trusted proxy header that holds
    a valid IP, else the host of the peer address."""
    for name in trusted_headers:
        first = request.headers.get(name, "").split(",")[0].strip()
        if first:
            try:
                ipaddress.ip_address(first)
            except ValueError:
                continue
            return first
    return request.remote or ""


def limiter_key(request: web.Request, rl: GlobalRateLimit) -> str:
    """``RateLimiter.GenerateKey``: token (``VaryByUser``) or client address
    (``VaryByRemoteAddr``), then the lowercased ``VaryByHeader`` value."""
    key = ""
    if rl.vary_by_user:
        token, _ = token_of(request)
        if token:
            key += token
        elif rl.vary_by_remote_addr:
            key += client_ip(request, rl.trusted_proxy_ip_header)
    elif rl.vary_by_remote_addr:
        key += client_ip(request, rl.trusted_proxy_ip_header)
    if rl.vary_by_header:
        key += request.headers.get(rl.vary_by_header, "").lower()
    return key


def authenticate(
    state: SimState, request: web.Request, required: bool, trust_requester: bool
) -> Session | None:
    """The request's session, with the server's token-source and CSRF rules."""
    token, source = token_of(request)
    if token is None:
        if required:
            raise session_expired("UserRequired")
        return None
    session = state.session(token)
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


# -- parameters --------------------------------------------------------------------------------
def int_query(ctx: Ctx, name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
    """An integer query parameter (``default`` when absent, capped at ``high``)."""
    raw = ctx.request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_param(name) from None
    if value < low:
        raise bad_param(name)
    return min(value, high) if high is not None else value


def body_too_large() -> ApiError:
    """What ``handleContextError`` makes of an ``http.MaxBytesError``."""
    return ApiError(
        413,
        "api.context.request_body_too_large.app_error",
        "The request body is too large.",
    )


async def read_body(ctx: Ctx) -> bytes:
    """The raw body; 413 past ``MaximumPayloadSizeBytes`` (+512, as ``http.MaxBytesReader``)."""
    try:
        return await ctx.request.read()
    except web.HTTPRequestEntityTooLarge:
        raise body_too_large() from None


async def json_body(ctx: Ctx, what: str) -> Any:
    """The request body as JSON; 400 ``invalid_body_param`` naming ``what`` when it is not
    (nesting deeper than Python's recursion limit included: Go refuses depth > 10,000)."""
    raw = await read_body(ctx)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise bad_body(what) from None


async def login_props(ctx: Ctx) -> dict[str, Any]:
    """``model.MapFromJSON``: a body that is not a JSON object reads as ``{}`` (the login
    handler then answers ``blank_pwd``) — an oversized one too, as on the server."""
    try:
        props = json.loads(await ctx.request.read())
    except (ValueError, UnicodeDecodeError, RecursionError, web.HTTPRequestEntityTooLarge):
        return {}
    return props if isinstance(props, dict) else {}
