"""OpenID Connect sign-in, the server's side (``web/oauth.go``, ``app/oauth.go``), against a
configurable IdP (``mmload sim --openid-discovery URL --openid-client-id ID
--openid-secret-file F``).

- ``GET /oauth/openid/login``: a state token kept by the server, the ``MMOAUTH`` cookie (30 min,
  HttpOnly), then 302 to the IdP's ``authorization_endpoint`` with ``response_type=code``, the
  client id, ``redirect_uri=<site>/signup/openid/complete``, the state (base64 of
  ``{"action":"login","token":…}``) and the scope;
- ``GET /signup/openid/complete?code=…&state=…`` (also ``/login/…`` and ``/oauth/…/complete``):
  the state's token must exist and match the cookie (else 400
  ``api.user.authorize_oauth_user.invalid_state.app_error``); the code is exchanged at the IdP's
  ``token_endpoint`` (form: client id and secret, code, ``grant_type=authorization_code``, the
  redirect URI; a ``bearer`` access token expected), the user read from ``userinfo_endpoint``
  with it — by its subject once known, else by email among the ``openid`` users of
  ``--accounts`` — then ``DoLogin``: the session cookies and 307 to the site.

The discovery document is read once, at the first sign-in. Failures are the server's error JSON
(the real server renders its error page instead).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from mmload.config.sim import OpenIdSettings
from mmload.sim.errors import ApiError
from mmload.sim.population import User
from mmload.sim.request import Ctx, Router

COOKIE = "MMOAUTH"
COOKIE_MAX_AGE_S = 30 * 60  # OAuthCookieMaxAgeSeconds
STATE_TTL_S = COOKIE_MAX_AGE_S
IDP_TIMEOUT_S = 30.0
INVALID_STATE = "api.user.authorize_oauth_user.invalid_state.app_error"


def add_routes(h: Any, r: Router) -> None:
    """The OAuth client endpoints of ``h`` (a Handlers with ``start_session``)."""
    flow = OpenIdFlow(h)
    r("GET", "/oauth/{service}/login", "loginWithOAuth", flow.login, session=False)
    for path in ("/signup/{service}/complete", "/login/{service}/complete"):
        r("GET", path, "completeOAuth", flow.complete, session=False)
    r("GET", "/oauth/{service}/complete", "completeOAuth", flow.complete, session=False)


class OpenIdFlow:
    """The server's half of the authorization-code flow with one IdP."""

    def __init__(self, handlers: Any) -> None:
        self.h = handlers
        self.core = handlers.core
        self.settings: OpenIdSettings | None = self.core.settings.openid
        self.states: OrderedDict[str, tuple[str, float]] = (
            OrderedDict()
        )  # token -> (cookie, expiry)
        self.endpoints: dict[str, str] | None = None
        self.by_subject: dict[str, User] = {}

    def _service(self, ctx: Ctx) -> OpenIdSettings:
        service = ctx.request.match_info["service"]
        if service != "openid" or self.settings is None:
            raise ApiError(
                501,
                "api.user.authorize_oauth_user.unsupported.app_error",
                "Unsupported OAuth service provider.",
                f"service={service[:32]}",
            )
        return self.settings

    async def _discover(self, s: OpenIdSettings) -> dict[str, str]:
        if self.endpoints is None:
            doc = await self._json("GET", s.discovery_endpoint)
            keys = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint")
            if not all(isinstance(doc.get(k), str) for k in keys):
                raise _idp_error("discovery document without the endpoints")
            self.endpoints = {k: doc[k] for k in keys}
        return self.endpoints

    async def login(self, ctx: Ctx) -> web.StreamResponse:
        """``loginWithOAuth``: state token, cookie, 302 to the IdP."""
        s = self._service(ctx)
        endpoints = await self._discover(s)
        now = time.time()
        while self.states:  # one TTL for all: the oldest first (O(1) per sign-in)
            oldest = next(iter(self.states))
            if self.states[oldest][1] > now:
                break
            del self.states[oldest]
        token, cookie = secrets.token_urlsafe(24), secrets.token_hex(13)
        self.states[token] = (cookie, now + STATE_TTL_S)
        state = base64.b64encode(json.dumps({"action": "login", "token": token}).encode())
        query = urlencode(
            {
                "response_type": "code",
                "client_id": s.client_id,
                "redirect_uri": self._redirect_uri(),
                "state": state.decode(),
                "scope": s.scope,
            }
        )
        resp = web.Response(
            status=302, headers={"Location": f"{endpoints['authorization_endpoint']}?{query}"}
        )
        resp.set_cookie(COOKIE, cookie, path="/", max_age=COOKIE_MAX_AGE_S, httponly=True)
        return resp

    async def complete(self, ctx: Ctx) -> web.StreamResponse:
        """``completeOAuth``: check the state, exchange the code, read the user, log in."""
        s = self._service(ctx)
        q = ctx.request.query
        if q.get("error") == "access_denied" or not q.get("code"):
            raise ApiError(400, "api.oauth.missing_code.app_error", "Missing or denied code.")
        self._check_state(q.get("state", ""), ctx.request.cookies.get(COOKIE, ""))
        endpoints = await self._discover(s)
        form = {
            "client_id": s.client_id,
            "client_secret": s.client_secret.get_secret_value(),
            "code": q["code"],
            "grant_type": "authorization_code",
            "redirect_uri": self._redirect_uri(),
        }
        access = await self._json("POST", endpoints["token_endpoint"], data=form)
        if str(access.get("token_type", "")).lower() != "bearer" or not access.get("access_token"):
            raise _idp_error("the token endpoint gave no bearer access token")
        headers = {"Authorization": f"Bearer {access['access_token']}"}
        info = await self._json("GET", endpoints["userinfo_endpoint"], headers=headers)
        user = self._user_of(info)
        metrics = self.core.metrics
        metrics.logins_by_method.labels("openid", "false", "false").inc()
        resp = await self.h.start_session(user, ctx.request, always_cookies=True)
        resp.set_status(307)  # to the site: the web app loads with its session cookies
        resp.headers["Location"] = self.core.site_url or "/"
        resp.del_cookie(COOKIE, path="/")
        return resp

    def _check_state(self, state: str, cookie: str) -> None:
        try:
            props = json.loads(base64.b64decode(state, validate=True))
            token = props["token"] if isinstance(props, dict) else ""
        except (ValueError, KeyError, TypeError):
            token = ""
        expected = self.states.pop(token, None) if isinstance(token, str) else None
        if expected is None or expected[1] < time.time() or not cookie or cookie != expected[0]:
            raise ApiError(400, INVALID_STATE, "Invalid state", "state or MMOAUTH cookie")

    def _user_of(self, info: dict[str, Any]) -> User:
        """``LoginByOAuth``: the user by its IdP subject, else by email (then bound to it)."""
        sub, email = str(info.get("sub") or ""), str(info.get("email") or "").lower()
        user = self.by_subject.get(sub) if sub else None
        if user is None and email:
            found = self.core.pop.find_login(email)
            if found is not None and found.auth_service == "openid":
                user = found
        if user is None or not sub:
            raise ApiError(
                400, "api.user.login_by_oauth.not_found.app_error", "No such OpenID user here."
            )
        user.auth_data = sub
        self.by_subject[sub] = user
        return user

    def _redirect_uri(self) -> str:
        return f"{self.core.site_url}/signup/openid/complete"

    async def _json(
        self,
        method: str,
        url: str,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One call to the IdP, JSON expected; a failure is a 500 naming the endpoint."""
        timeout = aiohttp.ClientTimeout(total=IDP_TIMEOUT_S)
        h = {"Accept": "application/json", **(headers or {})}
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.request(method, url, data=data, headers=h) as resp,
            ):
                body = await resp.json(content_type=None)
                if resp.status != 200 or not isinstance(body, dict):
                    raise _idp_error(f"{url.split('?')[0]} answered HTTP {resp.status}")
                return body
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise _idp_error(f"{url.split('?')[0]}: {type(exc).__name__}") from None


def _idp_error(detail: str) -> ApiError:
    return ApiError(
        500,
        "api.user.authorize_oauth_user.token_failed.app_error",
        "Token request failed.",
        detail,
    )
