"""Fidelity of every simulated endpoint: status and body validated against Mattermost's OpenAPI
spec (built from ../shared/mattermost-api), plus the server behaviour the spec does not cover
(cookies, CSRF, error JSON, headers). Where the real server and the spec disagree, the server
wins and the test names the spec's status (``spec_status``); docs/simulator.md lists each case.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from mmload.sim.ids import is_valid_id
from mmload.sim.server import SimHandle, start_in_thread
from tests.sim.conftest import small_settings
from tests.sim.spec import Spec

PASSWORD = "Loadtest-1!"
ERROR_KEYS = {"id", "message", "detailed_error", "request_id", "status_code"}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    handle = start_in_thread(small_settings())
    try:
        yield handle
    finally:
        handle.stop()


class Client:
    """A bearer-token API client that validates every response against the spec."""

    def __init__(self, sim: SimHandle, spec: Spec):
        self.base = sim.url
        self.spec = spec
        self.http = requests.Session()
        self.token = ""

    def login(self, login_id: str, password: str = PASSWORD) -> dict[str, Any]:
        resp = self.call(
            "POST",
            "/api/v4/users/login",
            json={"login_id": login_id, "password": password},
            spec_status=201,
        )
        self.token = resp.headers["Token"]
        return resp.json()

    def call(
        self,
        method: str,
        template: str,
        *,
        path: str | None = None,
        expect: int = 200,
        spec_status: int | None = None,
        auth: bool = True,
        **kw: Any,
    ) -> requests.Response:
        headers = kw.pop("headers", {})
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        resp = self.http.request(
            method, self.base + (path or template), headers=headers, timeout=10, **kw
        )
        assert resp.status_code == expect, (method, path or template, resp.text[:300])
        assert resp.headers["Content-Type"] == "application/json"
        assert is_valid_id(resp.headers["X-Request-Id"])
        self.spec.validate(template, method, resp.status_code, resp.json(), spec_status=spec_status)
        return resp


@pytest.fixture
def client(sim: SimHandle, spec: Spec) -> Client:
    c = Client(sim, spec)
    c.login("user-1")
    return c


def test_ping_with_and_without_server_status(sim: SimHandle, spec: Spec) -> None:
    c = Client(sim, spec)
    body = c.call("GET", "/api/v4/system/ping", auth=False).json()
    assert body["status"] == "OK" and "database_status" not in body
    assert {"AndroidLatestVersion", "IosMinVersion", "ActiveSearchBackend"} <= set(body)
    body = c.call(
        "GET", "/api/v4/system/ping", path="/api/v4/system/ping?get_server_status=true", auth=False
    ).json()
    assert body["database_status"] == "OK" and body["filestore_status"] == "OK"


def test_client_config_and_license_need_format_old(sim: SimHandle, spec: Spec) -> None:
    c = Client(sim, spec)
    cfg = c.call(
        "GET", "/api/v4/config/client", path="/api/v4/config/client?format=old", auth=False
    ).json()
    assert cfg["Version"] == "10.11.0" and cfg["SiteURL"] == sim.url
    assert all(isinstance(v, str) for v in cfg.values())
    assert "CollapsedThreads" not in cfg  # logged-out clients get the limited config
    lic = c.call(
        "GET", "/api/v4/license/client", path="/api/v4/license/client?format=old", auth=False
    ).json()
    assert lic == {"IsLicensed": "false"}
    resp = requests.get(sim.url + "/api/v4/config/client", timeout=5)
    assert resp.status_code == 501
    assert resp.json()["id"] == "api.config.client.old_format.app_error"
    c.login("user-2")
    cfg = c.call("GET", "/api/v4/config/client", path="/api/v4/config/client?format=old").json()
    assert cfg["CollapsedThreads"] == "default_on"


def test_login_200_token_header_user_body(sim: SimHandle, spec: Spec) -> None:
    c = Client(sim, spec)
    user = c.login("user-3@example.com")  # email works as login_id too
    assert user["username"] == "user-3" and user["email"] == "user-3@example.com"
    assert "password" not in user and is_valid_id(user["id"])
    assert is_valid_id(c.token)
    me = c.call("GET", "/api/v4/users/{user_id}", path="/api/v4/users/me").json()
    assert me["id"] == user["id"]


def test_login_errors(sim: SimHandle, spec: Spec) -> None:
    wrong = requests.post(
        sim.url + "/api/v4/users/login",
        json={"login_id": "user-4", "password": "wrong-pass"},
        timeout=5,
    )
    assert wrong.status_code == 401
    body = wrong.json()
    assert set(body) == ERROR_KEYS
    assert body["id"] == "api.user.login.invalid_credentials_email_username"
    assert body["status_code"] == 401 and body["detailed_error"] == ""
    spec.validate("/api/v4/users/{user_id}", "GET", 401, body)  # the AppError schema
    unknown = requests.post(
        sim.url + "/api/v4/users/login",
        json={"login_id": "nobody", "password": PASSWORD},
        timeout=5,
    )
    assert unknown.status_code == 401
    assert unknown.json()["id"] == "api.user.login.invalid_credentials_email_username"
    blank = requests.post(sim.url + "/api/v4/users/login", json={"login_id": "user-4"}, timeout=5)
    assert blank.status_code == 400
    assert blank.json()["id"] == "api.user.login.blank_pwd.app_error"
    assert "Token" not in wrong.headers and "Set-Cookie" not in wrong.headers


def test_too_many_failed_attempts_lock_the_account(sim: SimHandle) -> None:
    url = sim.url + "/api/v4/users/login"
    for _ in range(10):
        assert (
            requests.post(
                url, json={"login_id": "user-59", "password": "nope-nope"}, timeout=5
            ).status_code
            == 401
        )
    locked = requests.post(url, json={"login_id": "user-59", "password": PASSWORD}, timeout=5)
    assert locked.status_code == 401
    assert locked.json()["id"] == "api.user.check_user_login_attempts.too_many.app_error"


def test_initial_load_calls(client: Client) -> None:
    c = client
    me = c.call("GET", "/api/v4/users/{user_id}", path="/api/v4/users/me").json()
    prefs = c.call(
        "GET", "/api/v4/users/{user_id}/preferences", path="/api/v4/users/me/preferences"
    ).json()
    assert prefs and all(p["user_id"] == me["id"] for p in prefs)
    teams = c.call("GET", "/api/v4/users/{user_id}/teams", path="/api/v4/users/me/teams").json()
    assert [t["name"] for t in teams] == ["team-1"]
    team_id = teams[0]["id"]
    members = c.call(
        "GET", "/api/v4/users/{user_id}/teams/members", path="/api/v4/users/me/teams/members"
    ).json()
    assert members[0]["team_id"] == team_id and members[0]["user_id"] == me["id"]
    unread = c.call(
        "GET", "/api/v4/users/{user_id}/teams/unread", path="/api/v4/users/me/teams/unread"
    ).json()
    assert unread[0]["team_id"] == team_id and unread[0]["msg_count"] >= 0
    roles = c.call(
        "POST",
        "/api/v4/roles/names",
        json=["system_user", "team_user", "channel_user", "no_such_role"],
    ).json()
    assert sorted(r["name"] for r in roles) == ["channel_user", "system_user", "team_user"]
    chans = c.call(
        "GET",
        "/api/v4/users/{user_id}/teams/{team_id}/channels",
        path=f"/api/v4/users/me/teams/{team_id}/channels",
    ).json()
    names = [ch["name"] for ch in chans]
    assert names[:2] == ["town-square", "off-topic"] and len(names) == 4
    cms = c.call(
        "GET",
        "/api/v4/users/{user_id}/teams/{team_id}/channels/members",
        path=f"/api/v4/users/{me['id']}/teams/{team_id}/channels/members",
    ).json()
    assert {m["channel_id"] for m in cms} == {ch["id"] for ch in chans}
    statuses = c.call("POST", "/api/v4/users/status/ids", json=[me["id"]]).json()
    assert statuses[0]["status"] == "online"
    status = c.call(
        "GET", "/api/v4/users/{user_id}/status", path=f"/api/v4/users/{me['id']}/status"
    ).json()
    assert status["user_id"] == me["id"]


def _team_and_channels(c: Client) -> tuple[str, list[dict[str, Any]]]:
    team_id = c.call("GET", "/api/v4/users/{user_id}/teams", path="/api/v4/users/me/teams").json()[
        0
    ]["id"]
    chans = c.call(
        "GET",
        "/api/v4/users/{user_id}/teams/{team_id}/channels",
        path=f"/api/v4/users/me/teams/{team_id}/channels",
    ).json()
    return team_id, chans


def test_channel_endpoints_and_view(client: Client) -> None:
    c = client
    _, chans = _team_and_channels(c)
    town = chans[0]
    got = c.call(
        "GET", "/api/v4/channels/{channel_id}", path=f"/api/v4/channels/{town['id']}"
    ).json()
    assert got["name"] == "town-square" and got["type"] == "O"
    stats = c.call(
        "GET",
        "/api/v4/channels/{channel_id}/stats",
        path=f"/api/v4/channels/{town['id']}/stats?exclude_files_count=true",
    ).json()
    assert stats["member_count"] == 30  # 60 users over 2 teams
    member = c.call(
        "GET",
        "/api/v4/channels/{channel_id}/members/{user_id}",
        path=f"/api/v4/channels/{town['id']}/members/me",
    ).json()
    assert member["channel_id"] == town["id"]
    view = c.call(
        "POST",
        "/api/v4/channels/members/{user_id}/view",
        path="/api/v4/channels/members/me/view",
        json={"channel_id": town["id"], "prev_channel_id": ""},
    ).json()
    assert view["status"] == "OK" and town["id"] in view["last_viewed_at_times"]
    member = c.call(
        "GET",
        "/api/v4/channels/{channel_id}/members/{user_id}",
        path=f"/api/v4/channels/{town['id']}/members/me",
    ).json()
    assert member["last_viewed_at"] == view["last_viewed_at_times"][town["id"]]
    assert member["msg_count"] == got["total_msg_count"]
    found = c.call(
        "POST",
        "/api/v4/teams/{team_id}/channels/search",
        path=f"/api/v4/teams/{town['team_id']}/channels/search",
        json={"term": "off"},
        spec_status=201,
    ).json()
    assert [ch["name"] for ch in found] == ["off-topic"]


def test_posts_create_page_since_before_thread_reaction_search(client: Client) -> None:
    c = client
    team_id, chans = _team_and_channels(c)
    cid = chans[1]["id"]
    first = c.call(
        "GET", "/api/v4/channels/{channel_id}/posts", path=f"/api/v4/channels/{cid}/posts"
    ).json()
    assert len(first["order"]) == 3 and set(first["posts"]) == set(first["order"])
    created = []
    for i in range(4):
        created.append(
            c.call(
                "POST",
                "/api/v4/posts",
                expect=201,
                json={"channel_id": cid, "message": f"hello zebra {i}", "pending_post_id": f"p{i}"},
            ).json()
        )
    assert created[0]["pending_post_id"] == "p0" and created[0]["channel_id"] == cid
    page = c.call(
        "GET",
        "/api/v4/channels/{channel_id}/posts",
        path=f"/api/v4/channels/{cid}/posts?page=0&per_page=2",
    ).json()
    assert page["order"] == [created[3]["id"], created[2]["id"]]
    assert page["prev_post_id"] == created[1]["id"]
    older = c.call(
        "GET",
        "/api/v4/channels/{channel_id}/posts",
        path=f"/api/v4/channels/{cid}/posts?before={created[2]['id']}&per_page=60",
    ).json()
    assert older["order"][:2] == [created[1]["id"], created[0]["id"]]
    assert len(older["order"]) == 2 + 3
    since = c.call(
        "GET",
        "/api/v4/channels/{channel_id}/posts",
        path=f"/api/v4/channels/{cid}/posts?since={created[1]['create_at'] - 1}",
    ).json()
    assert set(since["order"]) >= {created[1]["id"], created[2]["id"], created[3]["id"]}
    reply = c.call(
        "POST",
        "/api/v4/posts",
        expect=201,
        json={"channel_id": cid, "message": "a reply", "root_id": created[0]["id"]},
    ).json()
    thread = c.call(
        "GET", "/api/v4/posts/{post_id}/thread", path=f"/api/v4/posts/{reply['id']}/thread"
    ).json()
    assert thread["order"] == [reply["id"], created[0]["id"]]
    assert thread["posts"][created[0]["id"]]["reply_count"] == 1
    me = c.call("GET", "/api/v4/users/{user_id}", path="/api/v4/users/me").json()
    threads = c.call(
        "GET",
        "/api/v4/users/{user_id}/teams/{team_id}/threads",
        path=f"/api/v4/users/{me['id']}/teams/{team_id}/threads?per_page=25",
    ).json()
    assert threads["total"] == 1 and threads["threads"][0]["id"] == created[0]["id"]
    reaction = c.http.post(
        c.base + "/api/v4/reactions",
        timeout=5,
        headers={"Authorization": f"Bearer {c.token}"},
        json={"user_id": me["id"], "post_id": created[0]["id"], "emoji_name": "smile"},
    )
    assert reaction.status_code == 200  # not in the spec excerpts: shape of model.Reaction
    assert reaction.json()["emoji_name"] == "smile"
    assert set(reaction.json()) >= {"user_id", "post_id", "emoji_name", "create_at"}
    hits = c.call(
        "POST",
        "/api/v4/teams/{team_id}/posts/search",
        path=f"/api/v4/teams/{team_id}/posts/search",
        json={"terms": "zebra", "is_or_search": False},
    ).json()
    assert hits["order"] == [p["id"] for p in reversed(created)]


def test_users_by_ids_search_direct_channel(client: Client) -> None:
    c = client
    me = c.call("GET", "/api/v4/users/{user_id}", path="/api/v4/users/me").json()
    other = c.call("POST", "/api/v4/users/search", json={"term": "user-1"}).json()
    assert other[0]["username"] == "user-1"
    assert {u["username"] for u in other} == {"user-1", *(f"user-1{i}" for i in range(10))}
    users = c.call("POST", "/api/v4/users/ids", json=[me["id"], other[1]["id"]]).json()
    assert {u["id"] for u in users} == {me["id"], other[1]["id"]}
    got = c.call("GET", "/api/v4/users/{user_id}", path=f"/api/v4/users/{other[1]['id']}").json()
    assert got["username"] == other[1]["username"]
    dm = c.call(
        "POST", "/api/v4/channels/direct", expect=201, json=[me["id"], other[1]["id"]]
    ).json()
    assert dm["type"] == "D" and dm["name"] == "__".join(sorted([me["id"], other[1]["id"]]))
    again = c.call(
        "POST", "/api/v4/channels/direct", expect=201, json=[other[1]["id"], me["id"]]
    ).json()
    assert again["id"] == dm["id"]
    c.call("POST", "/api/v4/posts", expect=201, json={"channel_id": dm["id"], "message": "hi"})


def test_authentication_and_permission_errors(sim: SimHandle, client: Client) -> None:
    base = sim.url
    anon = requests.get(base + "/api/v4/users/me", timeout=5)
    assert anon.status_code == 401 and set(anon.json()) == ERROR_KEYS
    assert anon.json()["id"] == "api.context.session_expired.app_error"
    bad = requests.get(
        base + "/api/v4/users/me", headers={"Authorization": "Bearer " + "a" * 26}, timeout=5
    )
    assert bad.status_code == 401
    token = {"Authorization": f"Bearer {client.token}"}
    # access_token in the query is for OAuth sessions only (web/handlers.go).
    query = requests.get(
        base + "/api/v4/users/me", params={"access_token": client.token}, timeout=5
    )
    assert query.status_code == 401
    assert query.json()["id"] == "api.context.token_provided.app_error"
    assert (
        requests.get(
            base + "/api/v4/users/me", timeout=5, headers={"Authorization": f"Token {client.token}"}
        ).status_code
        == 200
    )
    other_team = requests.get(
        base + "/api/v4/users/me/teams/" + "b" * 26 + "/channels", headers=token, timeout=5
    )
    assert other_team.status_code == 403
    assert other_team.json()["id"] == "api.context.permissions.app_error"
    bad_id = requests.get(base + "/api/v4/channels/not-an-id", headers=token, timeout=5)
    assert bad_id.status_code == 400
    assert bad_id.json()["id"] == "api.context.invalid_url_param.app_error"
    missing = requests.get(base + "/api/v4/channels/" + "c" * 26, headers=token, timeout=5)
    assert missing.status_code == 404
    unknown = requests.get(base + "/api/v4/no/such/route", headers=token, timeout=5)
    assert unknown.status_code == 404 and unknown.json()["id"] == "api.context.404.app_error"


def test_cookies_only_for_xhr_and_csrf_rule(sim: SimHandle, spec: Spec) -> None:
    url = sim.url + "/api/v4/users/login"
    body = {"login_id": "user-7", "password": PASSWORD}
    api = requests.post(url, json=body, timeout=5)
    assert api.status_code == 200 and "Set-Cookie" not in api.headers
    browser = requests.Session()
    resp = browser.post(url, json=body, headers={"X-Requested-With": "XMLHttpRequest"}, timeout=5)
    assert resp.status_code == 200
    jar = {c.name: c for c in browser.cookies}
    assert set(jar) == {"MMAUTHTOKEN", "MMUSERID", "MMCSRF"}
    assert jar["MMAUTHTOKEN"].value == resp.headers["Token"]
    assert jar["MMAUTHTOKEN"].has_nonstandard_attr("HttpOnly")
    assert not jar["MMCSRF"].has_nonstandard_attr("HttpOnly")
    assert jar["MMUSERID"].value == resp.json()["id"]
    assert not jar["MMAUTHTOKEN"].secure and jar["MMAUTHTOKEN"].path == "/"
    raw = resp.raw.headers.getlist("Set-Cookie")
    assert any("Max-Age=2592000" in h for h in raw)  # SessionLengthWebInHours 720
    # GET with the cookie alone: no CSRF check.
    assert browser.get(sim.url + "/api/v4/users/me", timeout=5).status_code == 200
    # POST with the cookie and nothing else: refused as a CSRF attempt.
    ids = [resp.json()["id"]]
    bare = browser.post(sim.url + "/api/v4/users/status/ids", json=ids, timeout=5)
    assert bare.status_code == 401
    assert bare.json()["id"] == "api.context.session_expired.app_error"
    ok = browser.post(
        sim.url + "/api/v4/users/status/ids",
        json=ids,
        timeout=5,
        headers={"X-CSRF-Token": jar["MMCSRF"].value},
    )
    assert ok.status_code == 200
    wrong = browser.post(
        sim.url + "/api/v4/users/status/ids", json=ids, timeout=5, headers={"X-CSRF-Token": "nope"}
    )
    assert wrong.status_code == 401
    xhr = browser.post(
        sim.url + "/api/v4/users/status/ids",
        json=ids,
        timeout=5,
        headers={"X-Requested-With": "XMLHttpRequest"},
    )
    assert xhr.status_code == 200
    # Bearer requests skip the CSRF check.
    bearer = requests.post(
        sim.url + "/api/v4/users/status/ids",
        json=ids,
        timeout=5,
        headers={"Authorization": "Bearer " + api.headers["Token"]},
    )
    assert bearer.status_code == 200
    # Secure cookies behind a TLS-terminating proxy.
    proxied = requests.post(
        url,
        json=body,
        timeout=5,
        headers={"X-Requested-With": "XMLHttpRequest", "X-Forwarded-Proto": "https"},
    )
    assert all("Secure" in h for h in proxied.raw.headers.getlist("Set-Cookie"))


def test_logout_200_clears_cookies_and_revokes(sim: SimHandle, spec: Spec) -> None:
    browser = requests.Session()
    login = browser.post(
        sim.url + "/api/v4/users/login",
        timeout=5,
        json={"login_id": "user-8", "password": PASSWORD},
        headers={"X-Requested-With": "XMLHttpRequest"},
    )
    token = login.headers["Token"]
    out = browser.post(sim.url + "/api/v4/users/logout", timeout=5)  # no CSRF check here
    assert out.status_code == 200 and out.json() == {"status": "OK"}
    spec.validate("/api/v4/users/logout", "POST", 200, out.json(), spec_status=201)
    assert not list(browser.cookies)
    after = requests.get(
        sim.url + "/api/v4/users/me", timeout=5, headers={"Authorization": f"Bearer {token}"}
    )
    assert after.status_code == 401


def test_version_header_matches_hello_format(sim: SimHandle) -> None:
    resp = requests.get(sim.url + "/api/v4/system/ping", timeout=5)
    version, build, config_hash, enterprise = resp.headers["X-Version-Id"].rsplit(".", 3)
    assert version == "10.11.0" and build == "dev" and enterprise == "false"
    assert len(config_hash) == 32


# No excerpt describes these; tests/sim/test_webapp_endpoints.py validates their bodies against
# the schemas in definitions.yaml (ScheduledPost, ChannelBookmarkWithFileInfo) or model.Draft.
NOT_IN_EXCERPTS = {
    ("GET", "/api/v4/cluster/status"),  # system.yaml's excerpt stops short of the cluster API
    # the web router's OAuth client endpoints (web/oauth.go): pages, not API v4 operations
    ("GET", "/oauth/{service}/login"),
    ("GET", "/oauth/{service}/complete"),
    ("GET", "/signup/{service}/complete"),
    ("GET", "/login/{service}/complete"),
    ("POST", "/api/v4/drafts"),
    ("GET", "/api/v4/users/{user_id}/teams/{team_id}/drafts"),
    ("DELETE", "/api/v4/users/{user_id}/channels/{channel_id}/drafts"),
    ("DELETE", "/api/v4/users/{user_id}/channels/{channel_id}/drafts/{thread_id}"),
    ("POST", "/api/v4/posts/schedule"),
    ("PUT", "/api/v4/posts/schedule/{scheduled_post_id}"),
    ("DELETE", "/api/v4/posts/schedule/{scheduled_post_id}"),
    ("GET", "/api/v4/posts/scheduled/team/{team_id}"),
    ("GET", "/api/v4/channels/{channel_id}/bookmarks"),
    ("POST", "/api/v4/channels/{channel_id}/bookmarks"),
    ("PATCH", "/api/v4/channels/{channel_id}/bookmarks/{bookmark_id}"),
    ("DELETE", "/api/v4/channels/{channel_id}/bookmarks/{bookmark_id}"),
    ("POST", "/api/v4/channels/{channel_id}/bookmarks/{bookmark_id}/sort_order"),
    ("POST", "/api/v4/client_perf"),
}


def test_every_simulated_route_is_a_documented_operation(sim: SimHandle, spec: Spec) -> None:
    routes = set()
    for resource in sim.sim.app.router.resources():
        info = resource.get_info()
        template = info.get("formatter") or info.get("path")
        for route in resource:
            if route.method not in ("*", "HEAD") and template and "{tail" not in template:
                routes.add((route.method, template))
    assert len(routes) >= 30
    for method, template in sorted(routes - NOT_IN_EXCERPTS):
        spec.operation(template, method)  # raises if the spec has no such operation


def test_error_bodies_match_the_documented_error_responses(
    sim: SimHandle, spec: Spec, client: Client
) -> None:
    token = {"Authorization": f"Bearer {client.token}"}
    cases = [
        ("GET", "/api/v4/users/{user_id}", "/api/v4/users/me", {}, 401),
        ("GET", "/api/v4/users/{user_id}", "/api/v4/users/" + "z" * 26, token, 404),
        ("GET", "/api/v4/users/{user_id}", "/api/v4/users/bad", token, 400),
        (
            "GET",
            "/api/v4/users/{user_id}/teams",
            "/api/v4/users/" + "z" * 26 + "/teams",
            token,
            403,
        ),
        ("GET", "/api/v4/channels/{channel_id}", "/api/v4/channels/" + "z" * 26, token, 404),
        ("POST", "/api/v4/posts", "/api/v4/posts", token, 400),
        ("POST", "/api/v4/users/ids", "/api/v4/users/ids", token, 400),
    ]
    for method, template, path, headers, status in cases:
        resp = requests.request(
            method,
            sim.url + path,
            headers=headers,
            timeout=5,
            json={} if method == "POST" else None,
        )
        assert resp.status_code == status, (path, resp.text)
        body = resp.json()
        assert set(body) == ERROR_KEYS and body["status_code"] == status
        spec.validate(template, method, status, body)


def test_memory_stays_bounded_posts_and_sessions() -> None:
    from mmload.sim.state import MAX_SESSIONS_PER_USER

    settings = small_settings(posts_kept_per_channel=5)
    with start_in_thread(settings) as sim:
        token = requests.post(
            sim.url + "/api/v4/users/login",
            timeout=5,
            json={"login_id": "user-1", "password": PASSWORD},
        ).headers["Token"]
        auth = {"Authorization": f"Bearer {token}"}
        team = requests.get(sim.url + "/api/v4/users/me/teams", headers=auth, timeout=5).json()
        chans = requests.get(
            sim.url + f"/api/v4/users/me/teams/{team[0]['id']}/channels", headers=auth, timeout=5
        ).json()
        cid = chans[0]["id"]
        made = [
            requests.post(
                sim.url + "/api/v4/posts",
                headers=auth,
                timeout=5,
                json={"channel_id": cid, "message": f"m{i}"},
            ).json()["id"]
            for i in range(8)
        ]
        got = requests.get(
            sim.url + f"/api/v4/channels/{cid}/posts", headers=auth, timeout=5
        ).json()
        assert got["order"] == made[::-1][:5]  # only the last 5 are kept
        evicted = requests.get(sim.url + f"/api/v4/posts/{made[0]}/thread", headers=auth, timeout=5)
        assert evicted.status_code == 404
        channel = requests.get(sim.url + f"/api/v4/channels/{cid}", headers=auth, timeout=5).json()
        assert channel["total_msg_count"] == 3 + 8  # counters keep counting
        for _ in range(MAX_SESSIONS_PER_USER):
            requests.post(
                sim.url + "/api/v4/users/login",
                timeout=5,
                json={"login_id": "user-1", "password": PASSWORD},
            )
        n_sessions = sim.call(lambda: len(sim.sim.state.sessions))
        assert n_sessions == MAX_SESSIONS_PER_USER
        first = requests.get(sim.url + "/api/v4/users/me", headers=auth, timeout=5)
        assert first.status_code == 401  # the oldest session was revoked


def test_other_users_get_the_sanitized_profile(client: Client) -> None:
    c = client
    me = c.call("GET", "/api/v4/users/{user_id}", path="/api/v4/users/me").json()
    assert me["notify_props"] and me["email_verified"] is True
    own = c.call("GET", "/api/v4/users/{user_id}", path=f"/api/v4/users/{me['id']}").json()
    assert own == me
    other = c.call("POST", "/api/v4/users/search", json={"term": "user-2"}).json()[0]
    assert other["username"] == "user-2"
    for hidden in ("notify_props", "email_verified", "last_password_update", "password"):
        assert hidden not in other
    assert other["email"] == "user-2@example.com"  # ShowEmailAddress defaults to true
    by_id = c.call("GET", "/api/v4/users/{user_id}", path=f"/api/v4/users/{other['id']}").json()
    assert by_id == other


def test_the_validator_itself_rejects_wrong_types_and_unknown_fields(spec: Spec) -> None:
    good = {"user_id": "u" * 26, "status": "online", "manual": False, "last_activity_at": 1}
    spec.validate("/api/v4/users/{user_id}/status", "GET", 200, good)
    with pytest.raises(AssertionError, match="is not of type 'boolean'"):
        spec.validate("/api/v4/users/{user_id}/status", "GET", 200, {**good, "manual": "no"})
    with pytest.raises(AssertionError, match=r"Status\.last_activty_at"):
        spec.validate("/api/v4/users/{user_id}/status", "GET", 200, {**good, "last_activty_at": 1})
    with pytest.raises(AssertionError, match="status 201 not documented"):
        spec.validate("/api/v4/users/{user_id}/status", "GET", 201, good)
