"""The 11.x web app's login and initial load against the simulator, seen from the server side.

One user runs under ``mmload run`` against a simulator of this module only, so the growth of
its ``mattermost_api_time`` samples during the run is this user's: the handler labels say which
server endpoints the load reached, the ``page_load_context`` label that the web app's header
travelled with them. The older web app's profile is run too, and must keep its own calls.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmload import record
from mmload.sim.launcher import SimProcess, running_sim
from tests.load.conftest import run_dir_from, run_mmload, write_scenario

pytestmark = pytest.mark.slow

WEBAPP_11_HANDLERS = {
    "getChannelsForUser",
    "getChannelMembersForUser",
    "getCategoriesForTeamForUser",
    "getPostsForChannelAroundLastUnread",
    "getWebappPlugins",
    "getServerLimits",
    "getClientConfig",
    "getClientLicense",
    "login",
    "getUser",
    "getPreferences",
    "getTeamsForUser",
    "getTeamMembersForUser",
    "getTeamsUnreadForUser",
    "getRolesByNames",
    "getChannelStats",
    "viewChannel",
}
LEGACY_ONLY = {"getChannelsForTeamForUser", "getChannelMembersForTeamForUser", "getPostsForChannel"}
SAMPLE = re.compile(r"^mattermost_api_time_count\{([^}]*)\} ([0-9.e+]+)$", re.M)


@pytest.fixture(scope="module")
def own_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """A simulator of this module, licensed (bookmarks need an Enterprise licence)."""
    tmp = tmp_path_factory.mktemp("sim")
    profile = tmp / "licensed.yaml"
    profile.write_text("extends: fast\nlicensed: true\n", encoding="utf-8")
    with running_sim(users=20, profile_file=profile, log_path=tmp / "sim.log") as s:
        yield s


def api_time_counts(metrics_url: str) -> dict[tuple[str, str], float]:
    """(handler, page_load_context) -> samples, from the simulator's /metrics."""
    with urllib.request.urlopen(metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    counts: dict[tuple[str, str], float] = {}
    for labels, value in SAMPLE.findall(text):
        fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        key = (fields["handler"], fields.get("page_load_context", ""))
        counts[key] = counts.get(key, 0) + float(value)
    return counts


def one_user_run(
    tmp_path: Path, sim: SimProcess, client: str
) -> tuple[Path, dict[tuple[str, str], float]]:
    """Run one user; its run record and the api_time samples it added."""
    assert sim.metrics_url
    before = api_time_counts(sim.metrics_url)
    scenario = write_scenario(
        tmp_path / f"{client}.yaml",
        name="one-user",
        kind="storm",
        users=1,
        arrival_s=0,
        hold_s=1,
        actions=False,
        client=client,
        slos={"avg_ms": None, "p99_ms": None},
    )
    res = run_mmload("run", str(scenario), "--target", sim.url, "--out", str(tmp_path / "runs"))
    assert res.returncode == 0, res.stdout + res.stderr
    after = api_time_counts(sim.metrics_url)
    added = {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}
    return run_dir_from(res.stdout), added


def test_one_user_loads_like_the_11x_web_app(tmp_path: Path, own_sim: SimProcess) -> None:
    run_dir, counts = one_user_run(tmp_path, own_sim, "webapp-11")
    handlers = {h for h, _ in counts}
    assert handlers >= WEBAPP_11_HANDLERS, WEBAPP_11_HANDLERS - handlers
    assert not LEGACY_ONLY & handlers
    # every call after the login page carried the web app's page-load context
    assert counts[("getChannelsForUser", "page_load")] == 1
    assert counts[("getClientConfig", "page_load")] == 2  # the login page's and loadMe's
    arrivals = record.read_table(run_dir, "arrivals").to_pandas()
    assert list(arrivals["outcome"]) == ["loaded"]
    assert arrivals["ws_connected"].notna().all()


def test_the_legacy_profile_keeps_the_older_calls(tmp_path: Path, own_sim: SimProcess) -> None:
    _, counts = one_user_run(tmp_path, own_sim, "webapp-legacy")
    handlers = {h for h, _ in counts}
    assert handlers >= LEGACY_ONLY
    assert not {"getChannelsForUser", "getWebappPlugins", "getServerLimits"} & handlers


# one request each action of the new mix sends (some only once state exists: a draft to delete,
# a thread to read, a scheduled post to send, a bookmark to move)
MIX_REQUESTS = {
    "GET /api/v4/users/{user_id}/teams/{team_id}/drafts",
    "POST /api/v4/drafts",
    "DELETE /api/v4/users/{user_id}/channels/{channel_id}/drafts/{thread_id}",
    "PUT /api/v4/users/{user_id}/teams/{team_id}/threads/{thread_id}/read/{timestamp}",
    "PUT /api/v4/users/{user_id}/teams/{team_id}/threads/{thread_id}/following",
    "PUT /api/v4/users/{user_id}/teams/{team_id}/threads/read",
    "POST /api/v4/posts/schedule",
    "PUT /api/v4/posts/schedule/{scheduled_post_id}",
    "DELETE /api/v4/posts/schedule/{scheduled_post_id}",
    "POST /api/v4/channels/{channel_id}/bookmarks",
    "PATCH /api/v4/channels/{channel_id}/bookmarks/{bookmark_id}",
    "POST /api/v4/channels/{channel_id}/bookmarks/{bookmark_id}/sort_order",
    "DELETE /api/v4/channels/{channel_id}/bookmarks/{bookmark_id}",
    "POST /api/v4/posts/search",
    "PUT /api/v4/posts/{post_id}/patch",
    "DELETE /api/v4/posts/{post_id}",
    "PUT /api/v4/users/{user_id}/status/custom",
    "DELETE /api/v4/users/{user_id}/status/custom",
    "POST /api/v4/channels/group/search",
    "PUT /api/v4/users/{user_id}/teams/{team_id}/channels/categories",
    "GET /api/v4/users/autocomplete",
    "GET /api/v4/users/{user_id}/teams/{team_id}/channels",
    "GET /api/v4/users/{user_id}/teams/{team_id}/threads",
}


def test_the_whole_action_mix_runs_against_the_simulator(
    tmp_path: Path, own_sim: SimProcess
) -> None:
    """Every implemented action, equally likely, for two users: the server answers every
    request (no failure), and each action's calls reach it."""
    from mmload.config.actions import load_table

    weights = {a.name: 1.0 for a in load_table() if a.handler}
    weights["FullReload"] = weights["ReconnectWebSocket"] = 0.2  # slow, and covered elsewhere
    # the state later actions act on: replies (threads), bookmarks to move, in fewer channels
    weights.update(CreatePost=6.0, AddChannelBookmark=3.0, UpsertDraft=2.0)
    for name in ("SwitchChannel", "OpenDirectOrGroupChannel", "CreateDirectChannel"):
        weights[name] = 0.3
    scenario = write_scenario(
        tmp_path / "mix.yaml",
        name="mix",
        kind="steady",
        users=2,
        arrival_s=0,
        hold_s=8,
        action_weights=weights,
        only_listed_actions=True,
        idle={"min_ms": 5, "avg_ms": 20},
        slos={"avg_ms": None, "p99_ms": None},
    )
    res = run_mmload("run", str(scenario), "--target", own_sim.url, "--out", str(tmp_path / "r"))
    assert res.returncode == 0, res.stdout + res.stderr
    df = record.read_table(run_dir_from(res.stdout), "requests").to_pandas()
    errors = df[df["error"].notna()]
    # The two users race each other: one may act on a thread whose root post the other deleted
    # an instant before its socket said so (the web app has the same window). That 404, after a
    # DeletePost, on a few thread calls, is the only error allowed.
    thread_calls = df["name"].str.contains("/threads/{thread_id}", regex=False)
    raced = errors["error"].str.contains("app.thread.get.app_error", regex=False)
    raced &= thread_calls.loc[errors.index]
    assert raced.all(), errors[~raced][["name", "error"]].drop_duplicates()
    if raced.any():
        assert (df["name"] == "DELETE /api/v4/posts/{post_id}").any()
        assert raced.sum() <= max(2, 0.05 * thread_calls.sum()), errors[["name", "error"]]
    names = set(df["name"])
    assert names >= MIX_REQUESTS, MIX_REQUESTS - names
