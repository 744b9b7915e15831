"""The user's HTTP client: named, recorded API requests with the web app's headers and cookies.

Every call is one Locust request named by its endpoint template (``GET
/api/v4/channels/{channel_id}/posts``), so the run record and Locust's statistics group by
endpoint, never by id. After login the session cookies are sent as one fixed ``Cookie`` header
(the bytes the browser sends) and Locust's cookie jar is switched off: ``http.cookiejar`` costs
about a third of a request's CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import gevent.socket
from geventhttpclient.client import HTTPClient, HTTPClientPool
from geventhttpclient.url import URL

from mmload.load.pin import OFF_TARGET, OffTargetError, pinned_infos
from mmload.load.plan import RateLimiter
from mmload.load.user.session import SessionStore

API = "/api/v4"
SESSION_COOKIES = ("MMAUTHTOKEN", "MMUSERID", "MMCSRF")


class ApiClient:
    """Requests on behalf of one user, authenticated by its :class:`SessionStore`."""

    def __init__(
        self, http: Any, session: SessionStore, limiter: RateLimiter | None = None
    ) -> None:
        self.http = http  # Locust's FastHttpSession (the user's ``client``)
        self.session = session
        self.limiter = limiter
        self.page_load_context: str | None = None  # the web app's X-Page-Load-Context

    @contextlib.contextmanager
    def page_load(self, context: str) -> Iterator[None]:
        """Label the requests inside as the web app labels a page load (``page_load``,
        ``reconnect``)."""
        self.page_load_context = context
        try:
            yield
        finally:
            self.page_load_context = None

    def headers(self, method: str) -> dict[str, str]:
        """The web app's headers: XHR marker, session cookie (+ CSRF) or bearer token."""
        h = {"X-Requested-With": "XMLHttpRequest"}
        s = self.session
        if s.cookie_header:
            h["Cookie"] = s.cookie_header
            if s.csrf and method != "GET":
                h["X-CSRF-Token"] = s.csrf
        elif s.token:  # the server set no session cookie: authenticate by header
            h["Authorization"] = f"Bearer {s.token}"
        if self.page_load_context:
            h["X-Page-Load-Context"] = self.page_load_context
        return h

    def request(
        self,
        method: str,
        path: str,
        name: str,
        json: Any = None,
        expect: tuple[int, str] | None = None,
    ) -> Any:
        """One API call named by its endpoint template; returns the response (failures recorded).

        ``path`` is relative to /api/v4; ``name`` is the template without the prefix, e.g.
        ``/channels/{channel_id}/posts``. ``expect``: an answer (status, error id) that is the
        expected one here, recorded as a success (the MFA login's first step).
        """
        if self.limiter:
            self.limiter.wait()
        with self.http.request(
            method,
            API + path,
            name=f"{method} {API}{name}",
            json=json,
            headers=self.headers(method),
            catch_response=True,
        ) as resp:
            status = resp.status_code or 0
            if 200 <= status < 400 or (expect and error_id(resp, status) == expect):
                resp.success()
            else:
                resp.failure(error_message(resp))
        return resp

    def get_json(self, path: str, name: str) -> Any:
        """GET and decode JSON; None when the request failed."""
        return json_or_none(self.request("GET", path, name))

    def adopt_session(self, resp: Any) -> None:
        """Take the session a login response set: its ``Token`` header and session cookies."""
        s = self.session
        s.token = resp.headers.get("Token") or resp.headers.get("token")
        values = {n: set_cookie(resp, n) for n in SESSION_COOKIES}
        jar = getattr(self.http.client, "cookiejar", None)
        if jar is not None:
            for c in jar:
                if c.name in SESSION_COOKIES and not values.get(c.name):
                    values[c.name] = c.value
            self.http.client.cookiejar = None
            if getattr(self.http, "cookiejar", None) is jar:  # Locust's session kept it too
                self.http.cookiejar = None
        if values.get("MMAUTHTOKEN"):
            s.cookie_header = "; ".join(f"{n}={v}" for n, v in values.items() if v)
            s.csrf = values.get("MMCSRF")


def json_or_none(resp: Any) -> Any:
    """The decoded JSON body of a successful response, else None."""
    try:
        if not resp.status_code or resp.status_code >= 400:
            return None
        return resp.json()
    except Exception:
        return None


def error_id(resp: Any, status: int) -> tuple[int, str] | None:
    """(status, the error JSON's id) of a failed response, else None."""
    try:
        body = resp.json()
    except Exception:
        return None
    return (status, body["id"]) if isinstance(body, dict) and body.get("id") else None


def error_message(resp: Any) -> str:
    """One line for a failed response: ``HTTP 401 api.user.login...`` or ``no response: …``."""
    status = resp.status_code or 0
    if not status:
        err = getattr(resp, "error", None)
        if isinstance(err, OffTargetError):
            return str(err)
        return f"no response: {err}" if err else "no response"
    try:
        body = resp.json()
        if isinstance(body, dict) and body.get("id"):
            return f"HTTP {status} {body['id']}"
    except Exception:
        pass
    text = (resp.text or "").strip().splitlines()
    return f"HTTP {status} {text[0][:80]}" if text else f"HTTP {status}"


def set_cookie(resp: Any, name: str) -> str | None:
    """A cookie set by the response's Set-Cookie headers (geventhttpclient gives a list)."""
    raw = resp.headers.get("set-cookie") if resp.headers is not None else None
    values = raw if isinstance(raw, list) else [raw] if raw else []
    for v in values:
        first = v.split(";", 1)[0].strip()
        if first.startswith(name + "="):
            return first.split("=", 1)[1]
    return None


class PinnedPool(HTTPClientPool):
    """geventhttpclient's per-host client pool for one target host: a client for another host
    (a redirect off the target) is refused before it connects; the target's clients connect to
    its pinned addresses (:mod:`mmload.load.pin`), from the local address ``source`` when given."""

    def __init__(self, host: str, source: str | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.host = host.lower()
        self.source = source

    @classmethod
    def replacing(cls, pool: HTTPClientPool, host: str, source: str | None = None) -> PinnedPool:
        """A pinned pool with the client arguments of ``pool`` (Locust's user agent's)."""
        pinned = cls(host, source)
        pinned.client_args = pool.client_args
        return pinned

    def get_client(self, url: str | URL) -> HTTPClient:
        if not isinstance(url, URL):
            url = URL(url)
        host = (url.host or "").lower()
        if host != self.host:
            raise OffTargetError(f"{OFF_TARGET}: refused {host}:{url.port} (target {self.host})")
        key = (url.host, url.port)
        client = self.clients.get(key)
        if client is None:  # pinned (and bound) before any other greenlet can use it
            client = HTTPClient.from_url(url, **self.client_args)
            pool = client._connection_pool  # its Host header and TLS name stay the host name
            infos = pinned_infos(host, pool._connection_port)
            pool._resolve = lambda: infos
            if self.source:  # the pool's socket factory, bound before it connects
                pool._create_tcp_socket = bound_socket_factory(self.source)
            # pinned_infos may yield (gevent's getaddrinfo): another greenlet's may be first
            client = self.clients.setdefault(key, client)
        return client


def bound_socket_factory(source: str) -> Any:
    """geventhttpclient's ``_create_tcp_socket`` with the socket bound to ``source`` (port 0:
    the system picks it)."""

    def create(family: int, socktype: int, protocol: int) -> gevent.socket.socket:
        sock = gevent.socket.socket(family, socktype, protocol)
        try:
            sock.bind((source, 0))
        except BaseException:
            sock.close()
            raise
        return sock

    return create
