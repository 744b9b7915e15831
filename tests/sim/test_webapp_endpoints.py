"""The 11.x web app's load endpoints and ltng's action endpoints: status and body against the
OpenAPI excerpts where one describes the endpoint, else against definitions.yaml's schema
(ScheduledPost, ChannelBookmarkWithFileInfo) or model.Draft's fields; ETags and 304; handler
names in mattermost_api_time; sidebar categories created once, on the first load."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from mmload.config.sim import WebappPlugin
from mmload.sim.server import SimHandle, start_in_thread
from tests.sim.conftest import small_settings
from tests.sim.spec import Spec, _rebase
from tests.sim.test_endpoints import Client

# model.Draft's JSON fields (server/public/model/draft.go): no schema in the excerpts.
DRAFT = {
    "type": "object",
    "required": ["create_at", "update_at", "user_id", "channel_id", "root_id", "message"],
    "properties": {
        "create_at": {"type": "integer"},
        "update_at": {"type": "integer"},
        "delete_at": {"type": "integer"},
        "user_id": {"type": "string"},
        "channel_id": {"type": "string"},
        "root_id": {"type": "string"},
        "message": {"type": "string"},
        "props": {"type": "object"},
        "file_ids": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    settings = small_settings(webapp_plugins=[WebappPlugin(id="com.mattermost.calls")])
    settings = settings.model_copy(
        update={"profile": settings.profile.model_copy(update={"licensed": True})}
    )
    handle = start_in_thread(settings)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def client(sim: SimHandle, spec: Spec) -> Client:
    c = Client(sim, spec)
    c.login("user-1")
    return c


def validate_definition(spec: Spec, name: str, body: Any) -> None:
    schema = _rebase({"$ref": f"#/components/schemas/{name}"})
    jsonschema.Draft4Validator(schema, registry=spec.registry).validate(body)


def me_team_channels(c: Client) -> tuple[dict, str, list[dict]]:
    me = c.call("GET", "/api/v4/users/{user_id}", path="/api/v4/users/me").json()
    team = c.call("GET", "/api/v4/users/{user_id}/teams", path="/api/v4/users/me/teams").json()
    chans = c.call(
        "GET", "/api/v4/users/{user_id}/channels", path="/api/v4/users/me/channels"
    ).json()
    return me, team[0]["id"], chans


def test_initial_load_of_the_11x_web_app(sim: SimHandle, client: Client) -> None:
    c = client
    me, team_id, chans = me_team_channels(c)
    assert [ch["name"] for ch in chans][:2] == ["town-square", "off-topic"]
    members = c.call(
        "GET",
        "/api/v4/users/{user_id}/channel_members",
        path="/api/v4/users/me/channel_members?page=0&per_page=200",
    ).json()
    assert {m["channel_id"] for m in members} == {ch["id"] for ch in chans}
    assert all(m["team_name"] == "team-1" for m in members)
    cats_path = f"/api/v4/users/me/teams/{team_id}/channels/categories"
    template = "/api/v4/users/{user_id}/teams/{team_id}/channels/categories"
    created = sim.call(lambda: sim.sim.core.store.categories_created)
    cats = c.call("GET", template, path=cats_path).json()
    again = c.call("GET", template, path=cats_path).json()
    assert sim.call(lambda: sim.sim.core.store.categories_created) == created + 1  # once
    assert cats == again
    assert [x["type"] for x in cats["categories"]] == ["favorites", "channels", "direct_messages"]
    assert cats["order"] == [
        f"{k}_{me['id']}_{team_id}" for k in ("favorites", "channels", "direct_messages")
    ]
    assert set(cats["categories"][1]["channel_ids"]) == {ch["id"] for ch in chans}
    town = chans[0]["id"]
    unread = c.call(
        "GET",
        "/api/v4/users/{user_id}/channels/{channel_id}/posts/unread",
        path=f"/api/v4/users/me/channels/{town}/posts/unread?limit_after=30&limit_before=30",
    ).json()
    assert len(unread["order"]) == 3  # never viewed: all seeded posts are unread
    plugins = c.call("GET", "/api/v4/plugins/webapp", auth=False).json()
    assert plugins[0]["webapp"]["bundle_path"].endswith("com.mattermost.calls_bundle.js")
    limits = c.call("GET", "/api/v4/limits/server", spec_status=200).json()
    assert limits["activeUserCount"] == 0  # a non-admin gets no user counts
    statuses = c.call("POST", "/api/v4/users/status/ids", json=[me["id"]]).json()
    assert statuses[0]["status"] == "online"
    image = requests.get(
        sim.url + f"/api/v4/users/{me['id']}/image?_=0",
        headers={"Authorization": f"Bearer {c.token}"},
        timeout=5,
    )
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    again = requests.get(
        sim.url + f"/api/v4/users/{me['id']}/image?_=0",
        headers={"Authorization": f"Bearer {c.token}", "If-None-Match": image.headers["ETag"]},
        timeout=5,
    )
    assert again.status_code == 304
    names = c.call("POST", "/api/v4/users/usernames", json=["user-3", "nobody"]).json()
    assert [u["username"] for u in names] == ["user-3"]
    auto = c.call(
        "GET",
        "/api/v4/users/autocomplete",
        path=f"/api/v4/users/autocomplete?in_team={team_id}&in_channel={town}&name=user-1",
    ).json()
    assert auto["users"] and "out_of_channel" in auto
    perf = requests.post(
        sim.url + "/api/v4/client_perf",
        headers={"Authorization": f"Bearer {c.token}"},
        json={
            "version": "0.1.0",
            "start": time.time() * 1000 - 1000,
            "end": time.time() * 1000,
            "counters": [],
            "histograms": [],
        },
        timeout=5,
    )
    assert perf.status_code == 200 and perf.json() == {"status": "OK"}


def test_etags_answer_304_when_unchanged(client: Client) -> None:
    c = client
    _me, team_id, chans = me_team_channels(c)
    for path in (
        "/api/v4/users/me",
        f"/api/v4/users/me/teams/{team_id}/channels",
        f"/api/v4/channels/{chans[0]['id']}/posts?page=0&per_page=30",
    ):
        first = c.http.get(c.base + path, headers={"Authorization": f"Bearer {c.token}"}, timeout=5)
        etag = first.headers["ETag"]
        second = c.http.get(
            c.base + path,
            headers={"Authorization": f"Bearer {c.token}", "If-None-Match": etag},
            timeout=5,
        )
        assert (first.status_code, second.status_code) == (200, 304), path
    c.call("POST", "/api/v4/posts", expect=201, json={"channel_id": chans[0]["id"], "message": "x"})
    changed = c.http.get(
        c.base + f"/api/v4/channels/{chans[0]['id']}/posts?page=0&per_page=30",
        headers={"Authorization": f"Bearer {c.token}", "If-None-Match": etag},
        timeout=5,
    )
    assert changed.status_code == 200  # a new post changes the channel's ETag


def test_drafts_threads_scheduled_posts_bookmarks_search_edit(
    sim: SimHandle, client: Client, spec: Spec
) -> None:
    c = client
    me, team_id, chans = me_team_channels(c)
    auth = {"Authorization": f"Bearer {c.token}"}
    cid = chans[1]["id"]
    draft = c.http.post(
        c.base + "/api/v4/drafts",
        json={"channel_id": cid, "message": "half"},
        headers=auth,
        timeout=5,
    )
    assert draft.status_code == 201
    jsonschema.validate(draft.json(), DRAFT)
    drafts = c.http.get(
        c.base + f"/api/v4/users/me/teams/{team_id}/drafts", headers=auth, timeout=5
    )
    assert [d["message"] for d in drafts.json()] == ["half"]
    for d in drafts.json():
        jsonschema.validate(d, DRAFT)
    gone = c.http.delete(
        c.base + f"/api/v4/users/me/channels/{cid}/drafts", headers=auth, timeout=5
    )
    assert gone.json() == {"status": "OK"}
    root = c.call(
        "POST", "/api/v4/posts", expect=201, json={"channel_id": cid, "message": "root"}
    ).json()
    c.call(
        "POST",
        "/api/v4/posts",
        expect=201,
        json={"channel_id": cid, "message": "re", "root_id": root["id"]},
    )
    thread_t = "/api/v4/users/{user_id}/teams/{team_id}/threads/{thread_id}"
    base = f"/api/v4/users/{me['id']}/teams/{team_id}/threads/{root['id']}"
    read = c.call("PUT", thread_t + "/read/{timestamp}", path=base + "/read/12345").json()
    assert read["last_viewed_at"] == 12345
    got = c.call("GET", thread_t, path=base).json()
    assert got["id"] == root["id"] and got["last_viewed_at"] == 12345
    later = int(time.time() * 1000) + 3_600_000
    sched = c.http.post(
        c.base + "/api/v4/posts/schedule",
        json={"channel_id": cid, "message": "later", "scheduled_at": later},
        headers=auth,
        timeout=5,
    )
    assert sched.status_code == 201
    validate_definition(spec, "ScheduledPost", sched.json())
    team_sched = c.http.get(
        c.base + f"/api/v4/posts/scheduled/team/{team_id}?includeDirectChannels=true",
        headers=auth,
        timeout=5,
    ).json()
    assert [p["id"] for p in team_sched[team_id]] == [sched.json()["id"]]
    mark = c.http.post(
        c.base + f"/api/v4/channels/{cid}/bookmarks",
        json={"display_name": "docs", "link_url": "https://example.com", "type": "link"},
        headers=auth,
        timeout=5,
    )
    assert mark.status_code == 201
    validate_definition(spec, "ChannelBookmarkWithFileInfo", mark.json())
    marks = c.http.get(c.base + f"/api/v4/channels/{cid}/bookmarks", headers=auth, timeout=5)
    assert [m["display_name"] for m in marks.json()] == ["docs"]
    hits = c.call(
        "POST", "/api/v4/posts/search", json={"terms": "root", "is_or_search": False}
    ).json()
    assert hits["order"] == [root["id"]]
    edited = c.call(
        "PUT",
        "/api/v4/posts/{post_id}/patch",
        path=f"/api/v4/posts/{root['id']}/patch",
        json={"message": "edited"},
    ).json()
    assert edited["message"] == "edited" and edited["edit_at"] > 0


def test_handler_labels_name_the_servers_handlers(sim: SimHandle, client: Client) -> None:
    text = requests.get(sim.metrics_url, timeout=5).text
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "mattermost_api_time"]
    handlers = {s.labels["handler"] for s in family.samples}
    assert {
        "getChannelsForUser",
        "getChannelMembersForUser",
        "getCategoriesForTeamForUser",
        "getPostsForChannelAroundLastUnread",
        "getWebappPlugins",
        "getServerLimits",
        "getProfileImage",
        "upsertDraft",
        "updateReadStateThreadByUser",
        "createSchedulePost",
        "createChannelBookmark",
        "searchPostsInAllTeams",
        "submitPerformanceReport",
    } <= handlers
