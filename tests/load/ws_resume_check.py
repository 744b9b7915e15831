"""Run as a script by test_ws_client_resume.py (gevent's monkey-patching must not touch the pytest
process): the 11.x client's socket drops, three posts are made while it is away, it reconnects
with its connection id and sequence number; then a reconnect whose connection id the server does
not know. Prints what the client saw as one JSON line."""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import gevent
import locust  # noqa: F401  (monkey-patches: websocket-client becomes gevent-friendly)

from mmload.config.scenario import WebSocketSpec
from mmload.load.ws import MMWebSocket, ws_url

PASSWORD = "Loadtest-1!"


def call(base: str, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json", "X-Requested-With": "XMLHttpRequest"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + "/api/v4" + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.headers, json.loads(resp.read() or b"null")


def login(base: str) -> tuple[str, str]:
    """The session token and the browser's Cookie header."""
    headers, _ = call(
        base, "POST", "/users/login", body={"login_id": "user-1", "password": PASSWORD}
    )
    cookies = [c.split(";", 1)[0] for c in headers.get_all("Set-Cookie")]
    return headers["Token"], "; ".join(cookies)


def wait_until(done: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Until ``done()`` (as soon as it is, up to ``timeout_s`` on a busy machine; the caller's
    checks then say what is missing), then 0.5 s more for anything that should not come."""
    deadline = time.time() + timeout_s
    while not done() and time.time() < deadline:
        gevent.sleep(0.05)
    gevent.sleep(0.5)


def main(base: str) -> None:
    token, cookie = login(base)
    _, teams = call(base, "GET", "/users/me/teams", token)
    _, chans = call(base, "GET", f"/users/me/teams/{teams[0]['id']}/channels", token)
    town = next(c["id"] for c in chans if c["name"] == "town-square")
    spec = WebSocketSpec(reconnect_min_s=0.5, reconnect_jitter_s=0.1, ping_interval_s=30)
    ws = MMWebSocket(
        ws_url(base),
        token,
        lambda **kw: None,
        spec,
        timeout_s=10,
        cookie=cookie,
        resume=True,
        auth="cookie",
    )
    events: list[dict] = []
    hooks: list[str] = []

    def on_event(msg: dict) -> None:
        post = (msg.get("data") or {}).get("post")
        post_id = json.loads(post)["id"] if post else None
        events.append({"event": msg["event"], "seq": msg["seq"], "at": time.time(), "id": post_id})

    ws.on_event = on_event
    ws.on_reconnect = lambda: hooks.append("reconnect")
    ws.on_missed = lambda: hooks.append("missed")
    assert ws.connect()
    first_id = ws.connection_id
    _, before = call(base, "POST", "/posts", token, {"channel_id": town, "message": "before"})
    wait_until(lambda: any(e["id"] == before["id"] for e in events))  # its event came
    expected_next = ws.server_seq
    ws.ws.sock.shutdown(socket.SHUT_RDWR)  # the network drops the connection
    cut_at = time.time()
    posted = []
    for i in range(3):
        _, post = call(base, "POST", "/posts", token, {"channel_id": town, "message": f"away {i}"})
        posted.append(post["id"])
    # the backoff (0.5-0.6 s), the resume, the replay of the three
    wait_until(lambda: "reconnect" in hooks and {e["id"] for e in events} >= set(posted))
    resumed = {"connection_id": ws.connection_id, "connected": ws.connected, "hooks": list(hooks)}
    # a reconnect the server cannot resume: an id it does not know gets a new one and a hello
    ws.connection_id = "x" * 26
    ws.ws.sock.shutdown(socket.SHUT_RDWR)
    wait_until(lambda: "missed" in hooks)
    print(
        json.dumps(
            {
                "first_id": first_id,
                "expected_next": expected_next,
                "cut_at": cut_at,
                "posted": posted,
                "events": events,
                "resumed": resumed,
                "after_unknown": {
                    "connection_id": ws.connection_id,
                    "hooks": hooks,
                    "server_seq": ws.server_seq,
                },
            }
        )
    )
    ws.close()


if __name__ == "__main__":
    main(sys.argv[1])
