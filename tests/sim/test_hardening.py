"""Client-controlled input cannot grow the simulator's metrics, crash a handler or fill its log:
bounded ``page_load_context`` labels, 413 past ``MaximumPayloadSizeBytes``, 400 for JSON nested
too deep (REST and WebSocket), and no traceback logged for any of them."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest
import requests
import websockets
from prometheus_client.parser import text_string_to_metric_families

from mmload.sim.server import SimHandle, start_in_thread
from tests.sim.conftest import small_settings

PASSWORD = "Loadtest-1!"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    handle = start_in_thread(small_settings())
    try:
        yield handle
    finally:
        handle.stop()


def token(sim: SimHandle, user: str = "user-1") -> str:
    resp = requests.post(
        sim.url + "/api/v4/users/login",
        json={"login_id": user, "password": PASSWORD},
        timeout=5,
    )
    return resp.headers["Token"]


def page_load_contexts(sim: SimHandle) -> set[str]:
    text = requests.get(sim.metrics_url, timeout=5).text
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "mattermost_api_time"]
    return {s.labels["page_load_context"] for s in family.samples}


def test_page_load_context_label_takes_only_the_web_apps_values(sim: SimHandle) -> None:
    for i in range(50):
        requests.get(
            sim.url + "/api/v4/system/ping",
            headers={"X-Page-Load-Context": f"attacker-{i}"},
            timeout=5,
        )
    for known in ("page_load", "reconnect"):
        requests.get(
            sim.url + "/api/v4/system/ping", headers={"X-Page-Load-Context": known}, timeout=5
        )
    assert page_load_contexts(sim) == {"", "page_load", "reconnect"}


def test_oversized_body_is_413_and_logs_no_traceback(
    sim: SimHandle, caplog: pytest.LogCaptureFixture
) -> None:
    auth = {"Authorization": "Bearer " + token(sim)}
    big = json.dumps({"channel_id": "a" * 26, "message": "x" * 400_000})  # > 300,000 + 512
    with caplog.at_level(logging.DEBUG):
        resp = requests.post(sim.url + "/api/v4/posts", data=big, headers=auth, timeout=10)
    assert resp.status_code == 413
    assert resp.json()["id"] == "api.context.request_body_too_large.app_error"
    assert resp.json()["status_code"] == 413
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    # just under the limit still reaches the handler (which refuses the message length)
    ok = json.dumps({"channel_id": "a" * 26, "message": "x" * 290_000})
    under = requests.post(sim.url + "/api/v4/posts", data=ok, headers=auth, timeout=10)
    assert under.status_code == 400
    assert under.json()["id"] == "model.post.is_valid.message_length.app_error"


def test_login_with_an_oversized_body_reads_as_blank_password(sim: SimHandle) -> None:
    """``MapFromJSON`` ignores the decode error: the server answers ``blank_pwd``."""
    big = '{"login_id":"user-2","password":"' + "x" * 400_000 + '"}'
    resp = requests.post(sim.url + "/api/v4/users/login", data=big, timeout=10)
    assert resp.status_code == 400
    assert resp.json()["id"] == "api.user.login.blank_pwd.app_error"


def test_too_deep_json_is_400_and_logs_no_traceback(
    sim: SimHandle, caplog: pytest.LogCaptureFixture
) -> None:
    auth = {"Authorization": "Bearer " + token(sim)}
    deep = "[" * 50_000 + "]" * 50_000  # 100 kB, under the size limit
    with caplog.at_level(logging.DEBUG):
        for path in ("/api/v4/posts", "/api/v4/users/ids", "/api/v4/users/status/ids"):
            resp = requests.post(sim.url + path, data=deep, headers=auth, timeout=10)
            assert resp.status_code == 400, (path, resp.text[:200])
            assert resp.json()["id"] == "api.context.invalid_body_param.app_error"
        login = requests.post(sim.url + "/api/v4/users/login", data=deep, timeout=10)
        assert login.status_code == 400

        async def ws_deep() -> None:
            url = sim.url.replace("http://", "ws://") + "/api/v4/websocket"
            headers = {"Authorization": auth["Authorization"]}
            async with websockets.connect(url, additional_headers=headers) as ws:
                json.loads(await ws.recv())  # hello
                await ws.send("[" * 3000 + "]" * 3000)  # undecodable: the server closes
                with pytest.raises(websockets.exceptions.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)

        asyncio.run(ws_deep())
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
