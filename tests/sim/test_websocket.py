"""The WebSocket end to end with an independent client (the `websockets` library): auth by
header, cookie and challenge; hello; seq; ping/pong; posted events to members only; the
unauthenticated timeout (shortened here, 5 s by default); server ping frames; the gauge."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import websockets
from websockets.exceptions import ConnectionClosed

from mmload.config.sim import SimSettings
from mmload.sim.server import SimHandle, start_in_thread
from tests.sim.conftest import small_settings

PASSWORD = "Loadtest-1!"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    # 2 s to authenticate: the challenge test's ping, refusal and challenge fit on a busy machine
    handle = start_in_thread(small_settings(ws_auth_timeout_s=2.0, ws_ping_interval_s=0.3))
    try:
        yield handle
    finally:
        handle.stop()


def ws_url(sim: SimHandle) -> str:
    return sim.url.replace("http://", "ws://") + "/api/v4/websocket"


def login(sim: SimHandle, username: str, xhr: bool = False) -> requests.Response:
    headers = {"X-Requested-With": "XMLHttpRequest"} if xhr else {}
    resp = requests.post(
        sim.url + "/api/v4/users/login",
        timeout=5,
        headers=headers,
        json={"login_id": username, "password": PASSWORD},
    )
    assert resp.status_code == 200
    return resp


async def recv_json(ws: Any, timeout: float = 30.0) -> dict[str, Any]:
    """The next message; ``timeout``: how long an expected one may take on a busy machine (the
    checks that nothing comes pass their own short one)."""
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def assert_hello(msg: dict[str, Any], user_id: str) -> None:
    assert msg["event"] == "hello" and msg["seq"] == 0
    assert len(msg["data"]["connection_id"]) == 26
    version, build, config_hash, enterprise = msg["data"]["server_version"].rsplit(".", 3)
    assert version == "10.11.0" and build == "dev" and len(config_hash) == 32
    assert enterprise == "false"
    assert msg["broadcast"]["user_id"] == user_id


def test_header_auth_hello_ping_pong_and_seq(sim: SimHandle) -> None:
    resp = login(sim, "user-1")

    async def run() -> None:
        headers = {"Authorization": "Bearer " + resp.headers["Token"]}
        async with websockets.connect(ws_url(sim), additional_headers=headers) as ws:
            assert_hello(await recv_json(ws), resp.json()["id"])
            for seq in (1, 2):
                sent_ms = int(time.time() * 1000)
                await ws.send(json.dumps({"seq": seq, "action": "ping"}))
                reply = await recv_json(ws)
                got_ms = time.time() * 1000
                assert reply["status"] == "OK" and reply["seq_reply"] == seq
                assert reply["data"]["text"] == "pong" and reply["data"]["version"] == "10.11.0"
                assert sent_ms <= reply["data"]["server_time"] <= got_ms  # epoch ms, stamped then
                assert reply["data"]["node_id"] == ""
            await ws.send(json.dumps({"seq": 3, "action": "no_such_action"}))
            bad = await recv_json(ws)
            assert bad["status"] == "FAIL" and bad["seq_reply"] == 3
            assert bad["error"]["id"] == "api.web_socket_router.bad_action.app_error"
            await ws.send(json.dumps({"seq": 0, "action": "ping"}))
            assert (await recv_json(ws))["error"]["id"] == "api.web_socket_router.bad_seq.app_error"
            await ws.send(json.dumps({"seq": 4}))
            no_action = await recv_json(ws)
            assert no_action["error"]["id"] == "api.web_socket_router.no_action.app_error"
            await ws.send(json.dumps({"seq": 5, "action": "ping"}))  # still alive, seq intact
            assert (await recv_json(ws))["seq_reply"] == 5

    asyncio.run(run())


def test_cookie_auth_on_upgrade(sim: SimHandle) -> None:
    resp = login(sim, "user-2", xhr=True)
    cookie = "; ".join(f"{c.name}={c.value}" for c in resp.cookies)

    async def run() -> None:
        async with websockets.connect(ws_url(sim), additional_headers={"Cookie": cookie}) as ws:
            assert_hello(await recv_json(ws), resp.json()["id"])

    asyncio.run(run())


def test_authentication_challenge(sim: SimHandle) -> None:
    resp = login(sim, "user-3")

    async def run() -> None:
        async with websockets.connect(ws_url(sim)) as ws:
            await ws.send(json.dumps({"seq": 1, "action": "ping"}))
            refused = await recv_json(ws)
            assert refused["status"] == "FAIL"
            assert refused["error"]["id"] == "api.web_socket_router.not_authenticated.app_error"
            await ws.send(
                json.dumps(
                    {
                        "seq": 2,
                        "action": "authentication_challenge",
                        "data": {"token": resp.headers["Token"]},
                    }
                )
            )
            first, second = await recv_json(ws), await recv_json(ws)
            assert_hello(first, resp.json()["id"])
            assert second == {"status": "OK", "seq_reply": 2}
            await asyncio.sleep(2.3)  # past the auth timeout: an authenticated socket stays
            await ws.send(json.dumps({"seq": 3, "action": "ping"}))
            assert (await recv_json(ws))["data"]["text"] == "pong"

    asyncio.run(run())


def test_bad_challenge_token_closes(sim: SimHandle) -> None:
    async def run() -> None:
        async with websockets.connect(ws_url(sim)) as ws:
            await ws.send(
                json.dumps(
                    {"seq": 1, "action": "authentication_challenge", "data": {"token": "x" * 26}}
                )
            )
            with pytest.raises(ConnectionClosed) as info:
                await recv_json(ws)
            assert info.value.rcvd is None  # dropped without a close frame, as the server does

    asyncio.run(run())


def test_unauthenticated_socket_dropped_after_timeout() -> None:
    """Dropped once ``ws_auth_timeout_s`` passes, and not before. Only lower bounds on time
    (a timer never fires early): the timeout is set above the 5 s default, so a server that
    ignored the setting would drop the socket too soon and fail."""
    timeout_s = 5.2
    with start_in_thread(small_settings(ws_auth_timeout_s=timeout_s)) as sim:

        async def run() -> float:
            start = time.monotonic()
            async with websockets.connect(ws_url(sim)) as ws:
                with pytest.raises(ConnectionClosed) as info:
                    await asyncio.wait_for(ws.recv(), 60)  # a hang guard only
                assert info.value.rcvd is None  # TCP closed without a close frame, like the server
            return time.monotonic() - start

        assert asyncio.run(run()) >= timeout_s


def test_default_auth_timeout_is_the_servers_5_s() -> None:
    assert SimSettings().ws_auth_timeout_s == 5.0
    assert SimSettings().ws_ping_interval_s == 60.0


def test_server_ping_frames(sim: SimHandle) -> None:
    resp = login(sim, "user-4")

    async def run() -> None:
        headers = {"Authorization": "Bearer " + resp.headers["Token"]}
        async with websockets.connect(
            ws_url(sim), additional_headers=headers, ping_interval=None
        ) as ws:
            await recv_json(ws)
            pings: list[float] = []
            # websockets answers pings itself; observe them via the protocol's hook.
            original = ws.protocol.recv_frame if hasattr(ws.protocol, "recv_frame") else None
            assert original is not None

            def spy(frame: Any) -> None:
                if frame.opcode.name == "PING":
                    pings.append(time.monotonic())
                original(frame)

            ws.protocol.recv_frame = spy
            # three pings arrive: every 0.3 s here; with the 60 s default none would within
            # the 30 s hang guard (a count, not a wall-clock measurement)
            for _ in range(3000):
                if len(pings) >= 3:
                    break
                await asyncio.sleep(0.01)
            assert len(pings) >= 3

    asyncio.run(run())


def test_posted_event_reaches_members_only_and_gauge(sim: SimHandle) -> None:
    author = login(sim, "user-5")  # team-1 (odd users); user-7 too; user-6 is in team-2
    same_team = login(sim, "user-7")
    other_team = login(sim, "user-6")
    bearer = {"Authorization": "Bearer " + author.headers["Token"]}
    teams = requests.get(sim.url + "/api/v4/users/me/teams", headers=bearer, timeout=5).json()
    chans = requests.get(
        sim.url + f"/api/v4/users/me/teams/{teams[0]['id']}/channels", headers=bearer, timeout=5
    ).json()
    town = next(c for c in chans if c["name"] == "town-square")

    async def run() -> None:
        def hdr(r: requests.Response) -> dict[str, str]:
            return {"Authorization": "Bearer " + r.headers["Token"]}

        async with (
            websockets.connect(ws_url(sim), additional_headers=hdr(same_team)) as member,
            websockets.connect(ws_url(sim), additional_headers=hdr(other_team)) as outsider,
        ):
            await recv_json(member)
            await recv_json(outsider)
            gauge = requests.get(sim.metrics_url, timeout=5).text
            # websockets' User-Agent ("Python/3.11 websockets/…") counts as a web client.
            assert 'mattermost_http_websockets_total{origin_client="web"} 2.0' in gauge
            created = await asyncio.to_thread(
                requests.post,
                sim.url + "/api/v4/posts",
                headers=bearer,
                timeout=5,
                json={"channel_id": town["id"], "message": "to the town"},
            )
            assert created.status_code == 201
            event = await recv_json(member)
            assert event["event"] == "posted" and event["seq"] == 1
            assert event["broadcast"]["channel_id"] == town["id"]
            post = json.loads(event["data"]["post"])
            assert post == created.json()
            assert event["data"]["channel_name"] == "town-square"
            assert event["data"]["sender_name"] == "@user-5"
            assert event["data"]["team_id"] == teams[0]["id"]
            with pytest.raises(TimeoutError):
                await recv_json(outsider, timeout=0.3)
        metrics = requests.get(sim.metrics_url, timeout=5).text
        assert 'mattermost_websocket_broadcasts_total{name="posted"}' in metrics
        for _ in range(600):  # closed sockets leave the gauge (30 s: a hang guard)
            metrics = requests.get(sim.metrics_url, timeout=5).text
            if 'mattermost_http_websockets_total{origin_client="web"} 0.0' in metrics:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("mattermost_http_websockets_total did not return to 0")

    asyncio.run(run())


def test_query_string_token_is_refused_for_non_oauth_sessions(sim: SimHandle) -> None:
    resp = login(sim, "user-9")

    async def run() -> None:
        url = ws_url(sim) + "?access_token=" + resp.headers["Token"]
        with pytest.raises(websockets.exceptions.InvalidStatus) as info:
            async with websockets.connect(url):
                pass
        assert info.value.response.status_code == 401

    asyncio.run(run())


def test_direct_message_posted_to_both_members_only(sim: SimHandle) -> None:
    a, b, c = login(sim, "user-11"), login(sim, "user-13"), login(sim, "user-15")
    bearer = {"Authorization": "Bearer " + a.headers["Token"]}
    dm = requests.post(
        sim.url + "/api/v4/channels/direct",
        headers=bearer,
        timeout=5,
        json=[a.json()["id"], b.json()["id"]],
    ).json()

    async def run() -> None:
        def hdr(r: requests.Response) -> dict[str, str]:
            return {"Authorization": "Bearer " + r.headers["Token"]}

        async with (
            websockets.connect(ws_url(sim), additional_headers=hdr(a)) as wa,
            websockets.connect(ws_url(sim), additional_headers=hdr(b)) as wb,
            websockets.connect(ws_url(sim), additional_headers=hdr(c)) as wc,
        ):
            for ws in (wa, wb, wc):
                await recv_json(ws)
            created = await asyncio.to_thread(
                requests.post,
                sim.url + "/api/v4/posts",
                headers=bearer,
                timeout=5,
                json={"channel_id": dm["id"], "message": "just us"},
            )
            assert created.status_code == 201
            for ws in (wa, wb):  # the author's own sockets get it too, as on the server
                event = await recv_json(ws)
                assert event["event"] == "posted" and event["data"]["channel_type"] == "D"
            with pytest.raises(TimeoutError):
                await recv_json(wc, timeout=0.3)

    asyncio.run(run())
