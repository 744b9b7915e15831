"""Checked with Mattermost's own client: tests/sim/client/check.js drives a real `mmload sim`
process with @mattermost/client (Client4 + WebSocketClient, pinned in package-lock.json;
`make nodedeps` installs it) and prints what the client returned."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mmload.sim.launcher import running_sim

CLIENT_DIR = Path(__file__).parent / "client"


@pytest.fixture(scope="module")
def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        pytest.fail("node is not on PATH (Node 20 is needed for the client fidelity test)")
    if not (CLIENT_DIR / "node_modules" / "@mattermost" / "client").is_dir():
        pytest.fail(f"@mattermost/client is not installed: run `make nodedeps` ({CLIENT_DIR})")
    return exe


def test_mattermost_js_client_logs_in_loads_and_gets_websocket_events(node: str) -> None:
    with running_sim(users=20, teams=1) as sim:
        proc = subprocess.run(
            [node, "check.js", sim.url, "user-1", "Loadtest-1!"],
            cwd=CLIENT_DIR,
            capture_output=True,
            text=True,
            timeout=120,  # a hang guard: check.js has its own 60 s
        )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["config"]["Version"] == "10.11.0" and out["config"]["SiteURL"] == sim.url
    assert out["license"] == {"IsLicensed": "false"}
    assert out["login"]["username"] == "user-1" and len(out["login"]["token"]) == 26
    assert out["me"] == "user-1"
    assert out["preferences"] > 0
    assert out["teams"] == ["team-1"]
    assert out["teamMembers"] == [True] and out["unreads"] == [True]
    assert out["roles"] == ["channel_user", "system_user", "team_user"]
    assert out["channels"][:2] == ["town-square", "off-topic"]
    assert out["channelMembers"] == len(out["channels"])
    assert out["view"] == "OK" and out["postCount"] == 5
    assert out["statuses"] == ["online"] and out["status"] == "online"
    assert out["channel"] == "town-square" and out["channelStats"] == 20 and out["myMember"]
    hello = out["hello"]
    assert hello["seq"] == 0 and len(hello["connection_id"]) == 26
    assert hello["server_version"].startswith("10.11.0.dev.")
    assert out["pong"] == {"status": "OK", "text": "pong", "version": "10.11.0"}
    posted = out["posted"]
    assert posted is not None, "WebSocketClient got no posted event"
    assert posted["seq"] == 1  # no sequence gap (the client would close with 4001)
    assert posted["post"]["id"] == out["created"]["id"]
    assert posted["post"]["message"] == "hello from Client4"
    assert out["reaction"] == "tada" and out["thread"] == [out["created"]["id"]]
    assert out["afterLogout"] == {"status": 401, "id": "api.context.session_expired.app_error"}
    # the 11.x web app's load and ltng's actions
    assert out["allChannels"][:2] == ["town-square", "off-topic"]
    assert out["allMembers"] == len(out["allChannels"])
    assert out["categories"] == ["favorites", "channels", "direct_messages"]
    assert out["unreadPosts"] >= 5 and out["plugins"] == []
    assert out["limits"]["activeUserCount"] == 0 and out["autocomplete"]
    assert out["draft"] == "draft" and out["drafts"] == 1 and out["draftDeleted"] == "OK"
    assert out["threadRead"] > 0
    assert out["scheduled"] == "later" and out["teamScheduled"] == 1
    assert out["bookmarks"] == 0 and out["searchAll"] == 1
    assert out["patched"] == "edited by Client4" and out["statuses2"] == 1
    assert out["perf"] == "OK" and out["typing"] == "OK"
    # WebSocketClient's own reconnect resumes the connection and gets what it missed
    assert out["resume"]["sameId"] and out["resume"]["missed"] == 0
    assert out["resume"]["replayed"] and out["resume"]["seq"] >= 2
