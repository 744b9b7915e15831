"""The target guard: its host resolved once and pinned; nothing connects anywhere else.

Each process keeps one table, :data:`PINNED`, from a host name to the addresses it resolved to
the first time it was asked (the loopback check of ``mmload run``, on the master). The master's
plan carries the table to its workers, which install it before any user spawns; a worker sent
to another proxy (``MMLOAD_TARGETS``) resolves that one once itself. Every connection of a run —
the probes, the users' HTTP clients (:class:`PinnedPool`), their WebSockets — goes to the pinned
addresses; the Host header and the TLS name stay the host, so certificates are still verified
against it. A redirect to another host is refused before any connection is made: the request
fails with ``redirect_off_target``.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from mmload import __version__
from mmload.errors import RunFailed, UserError

# mmload's own requests before a run (target probe, license): named so a server's log tells them
# from the users' web-app traffic.
PROBE_USER_AGENT = f"mmload/{__version__} (target probe)"

OFF_TARGET = "redirect_off_target"

Resolver = Callable[[str], list[str]]


def system_resolver(host: str) -> list[str]:
    """The addresses of ``host`` (the system's resolver, in its order)."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(i[4][0]) for i in infos))


def host_of(url: str) -> str:
    """The lower-case host name of a URL (``''`` without one)."""
    return (urlsplit(url).hostname or "").lower()


class AddressBook:
    """Host name -> the addresses every connection to it uses, resolved once."""

    def __init__(self, resolver: Resolver = system_resolver) -> None:
        self.resolver = resolver
        self._pins: dict[str, tuple[str, ...]] = {}
        self.sources: tuple[str, ...] = ()  # local addresses the users send from (round robin)

    def addresses(self, host: str) -> tuple[str, ...]:
        """The pinned addresses of ``host``, resolving it the first time (raises RunFailed)."""
        host = host.lower()
        if host not in self._pins:
            self._pins[host] = self._resolve(host)
        return self._pins[host]

    def _resolve(self, host: str) -> tuple[str, ...]:
        try:
            return (str(ipaddress.ip_address(host.strip("[]"))),)
        except ValueError:
            pass
        try:
            found = tuple(self.resolver(host))
        except OSError as exc:
            raise RunFailed(f"cannot resolve the target host {host}: {exc}") from None
        if not found:
            raise RunFailed(f"cannot resolve the target host {host}: no address")
        return found

    def snapshot(self) -> dict[str, list[str]]:
        """The table as plan data (sent to the workers)."""
        return {h: list(a) for h, a in self._pins.items()}

    def install(self, pins: dict[str, list[str]]) -> None:
        """Take the master's table (a worker, before its users spawn)."""
        self._pins.update({h.lower(): tuple(a) for h, a in pins.items() if a})

    def clear(self) -> None:
        """Forget every pin and source address (a new run in the same process)."""
        self._pins.clear()
        self.sources = ()


PINNED = AddressBook()


def is_loopback(url: str) -> bool:
    """True when every pinned address of the URL's host is a loopback address."""
    try:
        addrs = PINNED.addresses(host_of(url))
    except RunFailed:
        return False
    return all(ipaddress.ip_address(a).is_loopback for a in addrs)


def check_source(address: str, flag: str = "--source-address") -> str:
    """``address`` if this machine can send from it (a bind test), else bad input naming
    ``flag``."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise UserError(
            f"{address!r} is not an IP address", source="command line", field=flag
        ) from None
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((str(ip), 0))
        except OSError as exc:
            raise UserError(
                f"{ip} is not a local address of this machine ({exc.strerror or exc})",
                source="command line",
                field=flag,
            ) from None
    return str(ip)


def same_family(a: str, b: str) -> bool:
    """Whether two IP addresses are both IPv4 or both IPv6."""
    return ipaddress.ip_address(a).version == ipaddress.ip_address(b).version


def source_of(sources: list[str], index: int) -> str | None:
    """The local address user ``index`` sends from: round robin over ``sources`` (None: the
    system's choice)."""
    return sources[index % len(sources)] if sources else None


def connect(host: str, port: int, timeout: float, source: str | None = None) -> socket.socket:
    """A TCP connection to ``host``'s pinned addresses (the first that answers), from the local
    address ``source`` when given."""
    error: OSError | None = None
    bind = (source, 0) if source else None
    for address in PINNED.addresses(host):
        try:
            return socket.create_connection((address, port), timeout=timeout, source_address=bind)
        except OSError as exc:
            error = error or exc
    raise error or OSError(f"no address for {host}")


def connect_tls(
    host: str,
    port: int,
    timeout: float,
    context: ssl.SSLContext | None,
    source: str | None = None,
) -> socket.socket:
    """:func:`connect`, wrapped in TLS (verified against ``host``) when ``context`` is given."""
    sock = connect(host, port, timeout, source)
    if context is None:
        return sock
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


class OffTargetError(ConnectionError):
    """A request (a redirect) for a host other than the target: refused, never connected.

    A ``ConnectionError``, so Locust's FastHttpSession turns it into a failed response."""


def pinned_infos(host: str, port: int) -> list[tuple]:
    """``getaddrinfo`` entries of ``host``'s pinned addresses (numeric: no lookup)."""
    return [
        info
        for address in PINNED.addresses(host)
        for info in socket.getaddrinfo(
            address, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP, socket.AI_NUMERICHOST
        )
    ]


def open_socket(
    url: str, timeout: float, context: Callable[[], ssl.SSLContext], source: str | None = None
) -> socket.socket:
    """A connection for ``url`` (http(s) or ws(s)) to its host's pinned addresses, from
    ``source`` when given; TLS by ``context()`` for https and wss."""
    parts = urlsplit(url)
    secure = parts.scheme in ("https", "wss")
    port = parts.port or (443 if secure else 80)
    return connect_tls(host_of(url), port, timeout, context() if secure else None, source)


def open_websocket(
    url: str,
    timeout: float,
    context: Callable[[], ssl.SSLContext],
    source: str | None = None,
    **kw: Any,
) -> Any:
    """websocket-client's connection on a pinned socket; a redirect is never followed (one off
    the target fails with ``redirect_off_target``)."""
    import websocket

    # websocket-client checks each text frame's UTF-8 in pure Python (41 % of a generator's CPU
    # under broadcast load, py-spy); recv() still decodes it strictly, so nothing is lost.
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.settimeout(timeout)
    sock = open_socket(url, timeout, context, source)
    try:
        ws.connect(url, socket=sock, timeout=timeout, redirect_limit=0, **kw)
    except websocket.WebSocketException:
        resp = getattr(ws, "handshake_response", None)
        location = resp.headers.get("location") if resp is not None else None
        if location and host_of(location) not in ("", host_of(url)):
            raise OffTargetError(f"{OFF_TARGET}: refused {host_of(location)}") from None
        raise
    return ws


def http_get(url: str, timeout: float, context: Callable[[], ssl.SSLContext]) -> bytes:
    """The body of ``GET url`` from the pinned addresses; any other status than 200 raises
    OSError (a redirect is not followed)."""
    import http.client

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    conn.sock = open_socket(url, timeout, context)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path, headers={"User-Agent": PROBE_USER_AGENT})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        where = resp.getheader("Location")
        raise OSError(
            f"HTTP {resp.status}" + (f" (redirect to {where} not followed)" if where else "")
        )
    return body
