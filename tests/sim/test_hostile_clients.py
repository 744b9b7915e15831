"""Hostile clients against a real `mmload sim` process (issue 10, item 8), on every route it
serves: no client input gets a 500 or a traceback in the simulator's own log, bodies past the
payload limit are 413, JSON nested too deep is 400, and the metric labels stay the bounded set.

tests/sim/test_hardening.py checks each rule in depth on the in-thread server; this sweep is
the process as an operator runs it (its CLI, its logging), and every route, so a new handler
that decodes a body its own way is caught.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from mmload.config.sim import SimSettings
from mmload.sim.app import Simulator
from mmload.sim.launcher import SimProcess, running_sim

pytestmark = pytest.mark.slow

PASSWORD = "Loadtest-1!"
LIMIT = SimSettings.model_fields["max_payload_bytes"].default
HOSTILE = {  # name -> body
    "deep": b"[" * 50_000 + b"]" * 50_000,  # 100 kB: under the size limit
    "deep object": b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    "not utf-8": b"\xff\xfe\x00{",
    "wrong types": b'{"channel_id": 5, "message": [1], "user_ids": "x", "page": {}}',
    "a list": b'[{"channel_id": null}]',
    "huge number": b"1" + b"0" * 5000,
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimProcess, Path]]:
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    with running_sim(users=20, log_path=log) as s:
        yield s, log


def routes() -> list[tuple[str, str]]:
    """(method, path template) of every API route the simulator registers."""
    app = Simulator(SimSettings(port=0, metrics_port=0)).app
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method in ("GET", "POST", "PUT", "DELETE", "PATCH") and "{tail" not in path:
            found.add((route.method, path))
    return sorted(found)


def login(url: str, user: str) -> dict[str, str]:
    resp = requests.post(
        url + "/api/v4/users/login", json={"login_id": user, "password": PASSWORD}, timeout=10
    )
    resp.raise_for_status()
    return {"Authorization": "Bearer " + resp.headers["Token"], "Content-Type": "application/json"}


def concrete(path: str, ids: dict[str, str]) -> str:
    """A template with the session's own ids (others: a well-formed id that does not exist)."""
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "z" * 26), path)


def test_no_client_input_gets_a_500_or_a_traceback_on_any_route(
    sim: tuple[SimProcess, Path],
) -> None:
    s, log = sim
    table = routes()
    assert len(table) > 40, table  # the sweep covers the real route table
    auth = login(s.url, "user-2")
    me = requests.get(s.url + "/api/v4/users/me", headers=auth, timeout=10).json()
    team = requests.get(s.url + "/api/v4/users/me/teams", headers=auth, timeout=10).json()[0]
    ids = {"user_id": me["id"], "team_id": team["id"]}
    ids["channel_id"] = requests.get(
        s.url + f"/api/v4/users/me/teams/{team['id']}/channels", headers=auth, timeout=10
    ).json()[0]["id"]
    oversized = b'{"message": "' + b"x" * (LIMIT + 1024) + b'"}'
    served: dict[str, set[int]] = {}
    for method, path in table:
        if path.endswith("/logout"):
            continue  # it would end the session the sweep sends with
        url = s.url + concrete(path, ids) + "?page=-1&per_page=1" + "9" * 40 + "&since=x"
        for name, body in [*HOSTILE.items(), ("oversized", oversized)]:
            resp = requests.request(method, url, data=body, headers=auth, timeout=30)
            # 501 is an answer of the server's (no license: no bookmarks), never a failure
            assert resp.status_code < 500 or resp.status_code == 501, (method, path, name)
            assert "app.internal_error" not in resp.text, (method, path, name)
            served.setdefault(name, set()).add(resp.status_code)
    assert 413 in served["oversized"] and 400 in served["deep"]
    # where the handler reads the body, the limit and the depth are the server's answers
    post = s.url + "/api/v4/posts"
    assert requests.post(post, data=oversized, headers=auth, timeout=30).json()["id"] == (
        "api.context.request_body_too_large.app_error"
    )
    assert requests.post(post, data=HOSTILE["deep"], headers=auth, timeout=30).json()["id"] == (
        "api.context.invalid_body_param.app_error"
    )
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in text and " failed" not in text, text[-2000:]


def test_the_metric_labels_stay_bounded_whatever_the_client_sends(
    sim: tuple[SimProcess, Path],
) -> None:
    s, log = sim
    for i in range(300):
        requests.get(
            s.url + "/api/v4/system/ping",
            headers={"X-Page-Load-Context": f"ctx-{i}", "User-Agent": f"agent-{i}/1.0"},
            timeout=5,
        )
    for method in ("FOO", "PROPFIND", "TRACE"):  # methods no route has: never a label value
        requests.request(method, s.url + "/api/v4/system/ping", timeout=5)
        requests.request(method, s.url + "/api/v4/no/such/route", timeout=5)
    text = requests.get(s.metrics_url, timeout=5).text
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "mattermost_api_time"]
    labels = [s.labels for s in family.samples]
    assert {lbl["page_load_context"] for lbl in labels} <= {"", "page_load", "reconnect"}
    assert {lbl["origin_client"] for lbl in labels} <= {"web", "mobile", "desktop", "unknown"}
    assert {lbl["method"] for lbl in labels} <= {"GET", "POST", "PUT", "DELETE", "PATCH"}
    assert len(text) < 2_000_000  # 300 hostile clients did not grow the page (it was 118 MB)
    assert "Traceback" not in log.read_text(encoding="utf-8", errors="replace")
