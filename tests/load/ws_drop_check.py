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


def reconnected_and_pinged(samples: list[dict]) -> bool:
    """A second connect, and a ping answered after it."""
    connects = [s for s in samples if s["name"] == "WS /api/v4/websocket"]
    return len(connects) >= 2 and any(
        s["name"] == "WS ping" and s["ok"] and s["at"] > connects[1]["at"] for s in samples
    )


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
    # until it is back and has pinged again (the backoff, 0.5-0.7 s, then a ping interval): as
    # soon as that happens, up to 30 s on a busy machine, and 0.5 s more for anything extra
    deadline = time.time() + 30
    while not reconnected_and_pinged(samples) and time.time() < deadline:
        gevent.sleep(0.1)
    gevent.sleep(0.5)
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
