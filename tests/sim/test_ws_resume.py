"""The server's WebSocket resume, with an independent client: a reconnect with the kept
``connection_id`` and ``sequence_number`` gets no ``hello`` and the ``posted`` events it missed,
by sequence number (those written before the drop from the dead queue, those broadcast while it
was away from the send queue); an unknown id or a sequence number out of the dead queue gets a
new connection id; ``posted_ack=true`` adds ``should_ack`` to direct-channel posts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import websockets

from mmload.sim.server import SimHandle, start_in_thread
from tests.sim.conftest import small_settings

PASSWORD = "Loadtest-1!"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    handle = start_in_thread(small_settings(ws_dead_queue_size=4))
    try:
        yield handle
    finally:
        handle.stop()


class Api:
    def __init__(self, sim: SimHandle, user: str):
        self.sim = sim
        resp = requests.post(
            sim.url + "/api/v4/users/login",
            json={"login_id": user, "password": PASSWORD},
            timeout=5,
        )
        self.token, self.me = resp.headers["Token"], resp.json()
        self.auth = {"Authorization": f"Bearer {self.token}"}

    def town_square(self) -> str:
        team = requests.get(self.sim.url + "/api/v4/users/me/teams", headers=self.auth, timeout=5)
        chans = requests.get(
            self.sim.url + f"/api/v4/users/me/teams/{team.json()[0]['id']}/channels",
            headers=self.auth,
            timeout=5,
        )
        return chans.json()[0]["id"]

    def post(self, channel_id: str, message: str) -> str:
        resp = requests.post(
            self.sim.url + "/api/v4/posts",
            json={"channel_id": channel_id, "message": message},
            headers=self.auth,
            timeout=5,
        )
        assert resp.status_code == 201
        return resp.json()["id"]


def ws_url(sim: SimHandle, query: str = "") -> str:
    return sim.url.replace("http://", "ws://") + "/api/v4/websocket" + query


async def recv(ws: Any, timeout: float = 30.0) -> dict[str, Any]:
    """The next message (30 s: a hang guard, it returns as soon as the message comes)."""
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def posted_events(ws: Any, n: int) -> list[tuple[int, str]]:
    """(seq, message) of the next ``n`` events (all ``posted`` here)."""
    out = []
    for _ in range(n):
        msg = await recv(ws)
        assert msg["event"] == "posted", msg
        out.append((msg["seq"], json.loads(msg["data"]["post"])["message"]))
    return out


def test_reconnect_with_kept_connection_id_replays_missed_posted_by_sequence(
    sim: SimHandle,
) -> None:
    reader, writer = Api(sim, "user-1"), Api(sim, "user-3")  # same team (60 users, 2 teams)
    channel = writer.town_square()
    headers = {"Authorization": f"Bearer {reader.token}"}

    async def run() -> None:
        async with websockets.connect(ws_url(sim), additional_headers=headers) as ws:
            hello = await recv(ws)
            conn_id = hello["data"]["connection_id"]
            assert hello["seq"] == 0
            writer.post(channel, "one")
            writer.post(channel, "two")
            assert await posted_events(ws, 2) == [(1, "one"), (2, "two")]
        writer.post(channel, "three")  # while the reader is away: queued for its connection
        writer.post(channel, "four")
        # The client got up to seq 1 ("one"): it asks for 2 onwards. "two" comes from the
        # dead queue, "three" and "four" from the send queue; no hello on a kept connection.
        query = f"?connection_id={conn_id}&sequence_number=2&posted_ack=true"
        async with websockets.connect(ws_url(sim, query), additional_headers=headers) as ws:
            got = await posted_events(ws, 3)
            assert got == [(2, "two"), (3, "three"), (4, "four")]
            writer.post(channel, "five")
            assert await posted_events(ws, 1) == [(5, "five")]  # numbering continues

    asyncio.run(run())
    outcomes = requests.get(sim.metrics_url, timeout=5).text
    assert 'mmload_sim_websocket_reconnects_total{outcome="success"} 1.0' in outcomes


def test_unknown_connection_id_or_lost_sequence_gets_a_new_connection_id(sim: SimHandle) -> None:
    reader, writer = Api(sim, "user-5"), Api(sim, "user-7")
    channel = writer.town_square()
    headers = {"Authorization": f"Bearer {reader.token}"}

    async def run() -> None:
        stranger = "a" * 26
        query = f"?connection_id={stranger}&sequence_number=7"
        async with websockets.connect(ws_url(sim, query), additional_headers=headers) as ws:
            hello = await recv(ws)
            assert hello["event"] == "hello" and hello["seq"] == 0
            conn_id = hello["data"]["connection_id"]
            assert conn_id != stranger
            for i in range(6):  # more than the dead queue's 4
                writer.post(channel, f"m{i}")
            await posted_events(ws, 6)  # seq 1..6; the dead queue keeps 3..6
        query = f"?connection_id={conn_id}&sequence_number=2"  # seq 2 fell out: message loss
        async with websockets.connect(ws_url(sim, query), additional_headers=headers) as ws:
            hello = await recv(ws)
            assert hello["event"] == "hello" and hello["seq"] == 0
            assert hello["data"]["connection_id"] != conn_id  # the client must reload

    asyncio.run(run())


def test_bad_sequence_number_for_a_kept_connection_closes_the_socket(sim: SimHandle) -> None:
    reader = Api(sim, "user-9")
    headers = {"Authorization": f"Bearer {reader.token}"}

    async def run() -> None:
        async with websockets.connect(ws_url(sim), additional_headers=headers) as ws:
            conn_id = (await recv(ws))["data"]["connection_id"]
        query = f"?connection_id={conn_id}&sequence_number=x"
        async with websockets.connect(ws_url(sim, query), additional_headers=headers) as ws:
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await recv(ws)

    asyncio.run(run())


def test_posted_ack_marks_direct_posts_for_others_and_typing_reaches_the_channel(
    sim: SimHandle,
) -> None:
    alice, bob = Api(sim, "user-11"), Api(sim, "user-13")
    dm = requests.post(
        sim.url + "/api/v4/channels/direct",
        json=[alice.me["id"], bob.me["id"]],
        headers=alice.auth,
        timeout=5,
    ).json()

    async def run() -> None:
        url = ws_url(sim, "?posted_ack=true")
        async with (
            websockets.connect(url, additional_headers=bob.auth) as bob_ws,
            websockets.connect(url, additional_headers=alice.auth) as alice_ws,
        ):
            await recv(bob_ws), await recv(alice_ws)  # hellos
            alice.post(dm["id"], "hi bob")
            to_bob, to_alice = await recv(bob_ws), await recv(alice_ws)
            assert to_bob["data"]["should_ack"] is True
            assert "should_ack" not in to_alice["data"]  # never to the author
            await bob_ws.send(
                json.dumps({"seq": 1, "action": "posted_notify_ack", "data": {"post_id": "x"}})
            )
            assert (await recv(bob_ws))["status"] == "OK"
            await alice_ws.send(
                json.dumps({"seq": 1, "action": "user_typing", "data": {"channel_id": dm["id"]}})
            )
            typing = await recv(bob_ws)
            assert typing["event"] == "typing"
            assert typing["data"]["user_id"] == alice.me["id"]
            assert (await recv(alice_ws)) == {"status": "OK", "seq_reply": 1}

    asyncio.run(run())
