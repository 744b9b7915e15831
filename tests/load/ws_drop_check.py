"""Run as a script by test_websocket.py (it needs gevent's monkey-patching, which must not touch
the pytest process): log in, open the web client's socket, cut the connection under it, and print
what the client did as one JSON line."""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.request

import gevent
import locust  # noqa: F401  (monkey-patches: websocket-client becomes gevent-friendly)

from mmload.config.scenario import WebSocketSpec
from mmload.load.ws import MMWebSocket, ws_url


def login(base: str) -> str:
    req = urllib.request.Request(
        base + "/api/v4/users/login",
        data=json.dumps({"login_id": "user-1", "password": "Loadtest-1!"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.headers["Token"]


def main(base: str) -> None:
    samples: list[dict] = []

    def fire(**kw: object) -> None:
        samples.append(
            {
                "name": kw["name"],
                "ok": kw["exception"] is None,
                "ctx": kw["context"],
                "at": time.time(),
            }
        )

    spec = WebSocketSpec(
        ping_interval_s=0.3, reconnect_min_s=0.5, reconnect_max_s=5, reconnect_jitter_s=0.2
    )
    ws = MMWebSocket(ws_url(base), login(base), fire, spec, timeout_s=10)
    assert ws.connect()
    gevent.sleep(1.0)
    cut_at = time.time()
    ws.ws.sock.shutdown(socket.SHUT_RDWR)  # the network drops the connection
    gevent.sleep(2.0)
    connected = ws.connected
    ws.close()
    print(
        json.dumps(
            {
                "samples": samples,
                "cut_at": cut_at,
                "connected": connected,
                "connection_id": ws.connection_id,
                "backoff_s": ws.last_backoff_s,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
