"""Tiny real HTTP servers on 127.0.0.x for the target-guard tests (threads of the test process).

:class:`Redirector` answers the two probes a run starts with (config/client, license/client) and
redirects every other path to another address; :class:`Tally` counts every TCP connection it
accepts (and answers 200 ``{}``), so "it received nothing" is a count of zero connections, not
of requests.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CLIENT_CONFIG = {"Version": "11.0.0", "BuildNumber": "guard-test"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        super().__init__((address, port), handler)
        self.connections = 0
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self._lock:
            self.connections += 1
        return True

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> _Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def do_GET(self) -> None:
        self._read_body()
        self.server.paths.append(self.path)
        self.route()

    do_POST = do_PUT = do_DELETE = do_GET

    def route(self) -> None:
        self._answer(200, {})


class _RedirectHandler(_Handler):
    def route(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/api/v4/config/client":
            self._answer(200, CLIENT_CONFIG)
        elif path == "/api/v4/license/client":
            self._answer(200, {"IsLicensed": "false"})
        elif path == "/on-target":
            self._answer(302, {}, {"Location": "/landed"})
        elif path == "/landed":
            self._answer(200, {"landed": True})
        else:
            self._answer(302, {}, {"Location": self.server.elsewhere + self.path})


def redirector(address: str, elsewhere: str) -> _Server:
    """A server on ``address`` redirecting (302) every path but the probes to ``elsewhere``;
    ``/on-target`` redirects to ``/landed`` on itself."""
    server = _Server(address, _RedirectHandler)
    server.elsewhere = elsewhere  # type: ignore[attr-defined]
    return server


def tally(address: str, port: int = 0) -> _Server:
    """A server on ``address`` (and ``port``, else a free one) counting the connections it
    accepts."""
    return _Server(address, _Handler, port)


def with_tls(server: _Server, cert_file: str, key_file: str) -> _Server:
    """``server`` speaking HTTPS with the certificate in ``cert_file``."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    return server
