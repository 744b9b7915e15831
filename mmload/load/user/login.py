"""How a user signs in, by its credential's method, as the web app does it.

- ``email``/``username``: ``POST /api/v4/users/login`` with Client4's body (``login_id``,
  ``password``, ``token: ""``, ``deviceId: ""``);
- ``ldap``: the same with ``ldap_only: "true"`` (Client4's ``login(..., ldapOnly)``);
- MFA (a ``totp_secret``, any password method): first without a code — the server answers 401
  ``mfa.validate_token.authenticate.app_error`` and the web app shows its MFA screen, recorded here
  as ``POST /api/v4/users/login (no MFA code)`` and counted a success —, then again with the TOTP
  code of the secret (pyotp, RFC 6238: 30 s, 6 digits);
- ``openid``: the login page's link ``GET /oauth/openid/login`` (302 to the IdP's authorization
  endpoint, the ``MMOAUTH`` cookie), the IdP's login form filled in and posted, the IdP's redirect
  back to ``/signup/openid/complete?code=…&state=…``, whose answer sets ``MMAUTHTOKEN``,
  ``MMUSERID`` and ``MMCSRF`` — as mattermost-load-test-ng's ``openid:`` users log in. The IdP
  leg is its own HTTP client, pinned to the IdP's host (the target's first redirect); any other
  host is refused as ``redirect_off_target``. IdP requests are recorded as ``IdP GET /path``.

Failures never carry a credential: a status and the server's error id, or which step failed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import pyotp
from locust.contrib.fasthttp import FastHttpSession

from mmload.config.credentials import Credential
from mmload.load.idp_form import LoginForm
from mmload.load.pin import OFF_TARGET, host_of
from mmload.load.plan import Plan
from mmload.load.tls import client_context
from mmload.load.user.client import ApiClient, PinnedPool, error_message, json_or_none, set_cookie
from mmload.load.user.webapp11 import LoginFailed

MFA_REQUIRED = "mfa.validate_token.authenticate.app_error"
MAX_HOPS = 10  # redirects followed in one OpenID sign-in
FORM = "application/x-www-form-urlencoded"


class LoginMethods:
    """Sign in by the user's credential (a mixin of :class:`~mmload.load.user.MattermostUser`)."""

    plan: Plan
    http: ApiClient
    client: FastHttpSession
    environment: Any
    host: str
    index: int
    source: str | None
    network_timeout: float

    def sign_in(self) -> dict[str, Any]:
        """Log in by the credential's method; returns the user JSON the server gave (``{}``
        for OpenID: the web app reads ``users/me`` next). Raises LoginFailed."""
        account = self.plan.account(self.index)
        if account.method == "openid":
            return self.openid_sign_in(account)
        return self.password_sign_in(account)

    # ---- password methods ---------------------------------------------------------------------
    def password_sign_in(self, account: Credential) -> dict[str, Any]:
        """``POST /users/login`` as Client4 sends it (``ldap_only`` for LDAP; MFA in two steps)."""
        body = {"login_id": account.login_id, "password": account.password}
        body.update(token="", deviceId="")
        if account.method == "ldap":
            body["ldap_only"] = "true"
        if account.totp_secret:
            first = self.http.request(
                "POST", "/users/login", "/users/login (no MFA code)", body, (401, MFA_REQUIRED)
            )
            if first.status_code != 401:
                raise LoginFailed(f"login without MFA code: {error_message(first)}")
            body["token"] = pyotp.TOTP(account.totp_secret).now()
        resp = self.http.request("POST", "/users/login", "/users/login", json=body)
        if resp.status_code != 200:
            raise LoginFailed(f"login: {error_message(resp)}")
        self.http.adopt_session(resp)
        return json_or_none(resp) or {}

    # ---- OpenID Connect -----------------------------------------------------------------------
    def openid_sign_in(self, account: Credential) -> dict[str, Any]:
        """The web app's OpenID sign-in through the IdP's login form (see the module)."""
        start = f"{self.host}/oauth/openid/login"
        resp = self._navigate(self.client, "GET", start, "GET /oauth/openid/login")
        oauth_cookie = set_cookie(resp, "MMOAUTH")
        authorize = _location(resp, start, "GET /oauth/openid/login")
        idp = self._idp_session(authorize)
        try:
            return self._at_idp(account, idp, authorize, oauth_cookie)
        finally:
            idp.client.clientpool.close()  # the browser's IdP tab is done: no idle sockets

    def _at_idp(
        self, account: Credential, idp: FastHttpSession, authorize: str, oauth_cookie: str | None
    ) -> dict[str, Any]:
        """From the IdP's authorization endpoint to the target's session cookies."""
        url, resp = self._follow(idp, authorize, oauth_cookie, host_of(authorize))
        if resp is None:  # the IdP knew the user already: straight back, signed in
            return {}
        form = LoginForm.parse(resp.text or "", url)
        if not form.ok:
            raise LoginFailed(f"openid: no login form at the IdP ({_path(url)})")
        data = form.filled(account.login_id, account.password)
        name = f"IdP {form.method} {_path(form.action)}"
        resp = self._navigate(idp, form.method, form.action, name, data)
        if not _redirect(resp):
            raise LoginFailed("openid: the IdP refused the login (HTTP 200: its form again)")
        back = _location(resp, form.action, "the IdP's login")
        url, resp = self._follow(idp, back, oauth_cookie, host_of(authorize))
        if resp is not None:
            raise LoginFailed(f"openid: ended at {_path(url)} (HTTP {resp.status_code})")
        return {}

    def _follow(
        self, idp: FastHttpSession, url: str, oauth_cookie: str | None, idp_host: str
    ) -> tuple[str, Any]:
        """Follow redirects from ``url``, on the IdP with its client and on the target with the
        user's. Returns ``(url, None)`` once the target set the session cookies (adopted), else
        the first answer that is no redirect, on the IdP."""
        target = host_of(self.host)
        for _ in range(MAX_HOPS):
            host = host_of(url)
            if host == target:
                headers = {"Cookie": f"MMOAUTH={oauth_cookie}"} if oauth_cookie else {}
                name = f"GET {_path(url)}"
                resp = self._navigate(self.client, "GET", url, name, headers=headers)
                if set_cookie(resp, "MMAUTHTOKEN"):
                    self.http.adopt_session(resp)
                    return url, None
                if not _redirect(resp):
                    raise LoginFailed(f"openid: {name}: HTTP {resp.status_code}, no session")
            elif host == idp_host:
                name = f"IdP GET {_path(url)}"
                resp = self._navigate(idp, "GET", url, name)
                if not _redirect(resp):
                    return url, resp
            else:
                raise LoginFailed(f"openid: {OFF_TARGET}: refused {host} (IdP {idp_host})")
            url = _location(resp, url, name)
        raise LoginFailed(f"openid: more than {MAX_HOPS} redirects")

    def _idp_session(self, authorize: str) -> FastHttpSession:
        """An HTTP client for the IdP's host only (pinned, TLS verified, its own cookies)."""
        t = self.network_timeout
        session = FastHttpSession(
            None,
            self.environment.events.request,
            self,  # type: ignore[arg-type]  (the user: its context goes on every request)
            insecure=False,
            ssl_context_factory=client_context,
            network_timeout=t,
            connection_timeout=t,
            max_retries=0,
            concurrency=1,
        )
        agent = session.client
        agent.clientpool = PinnedPool.replacing(agent.clientpool, host_of(authorize), self.source)
        return session

    @staticmethod
    def _navigate(
        session: FastHttpSession,
        method: str,
        url: str,
        name: str,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One browser navigation (no redirect followed): 2xx/3xx succeed, else recorded failed
        with its status only (an IdP's error page may repeat what was typed)."""
        h = {"Accept": "text/html,application/xhtml+xml", **(headers or {})}
        body = None
        if data is not None and method == "GET":  # a form without method="post"
            url = f"{url.split('?', 1)[0]}?{urlencode(data)}"
        elif data is not None:
            h["Content-Type"] = FORM
            body = urlencode(data)
        with session.request(
            method, url, name=name, data=body, headers=h, allow_redirects=False, catch_response=True
        ) as resp:
            status = resp.status_code or 0
            why = f"HTTP {status}" if status else error_message(resp)  # an IdP page: no text
            if 200 <= status < 400:
                resp.success()
            else:
                resp.failure(why)
        if not 200 <= status < 400:
            raise LoginFailed(f"openid: {name}: {why}")
        return resp


def _redirect(resp: Any) -> bool:
    return resp.status_code in (301, 302, 303, 307, 308)


def _location(resp: Any, base: str, step: str) -> str:
    """The absolute redirect target of ``resp``; LoginFailed when it is no redirect."""
    where = resp.headers.get("location") if resp.headers is not None else None
    if not _redirect(resp) or not where:
        raise LoginFailed(f"openid: {step} answered HTTP {resp.status_code}, not a redirect")
    return urljoin(base, where)


def _path(url: str) -> str:
    """A URL's path only (a query may carry a code or state: never in a name or message)."""
    return urlsplit(url).path or "/"
