"""`mmload seed`: valid Mattermost bulk-import JSONL (the rules of app/imports/import_validators.go
as summarised in mattermost-facts.md), deterministic, and the same population the simulator
serves (checked through the simulator's API, as a client sees it)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import requests

from mmload.config.sim import PopulationSpec, SimSettings
from mmload.sim.population import Population
from mmload.sim.server import start_in_thread
from tests.conftest import run_cli

ARGS = [
    "--users",
    "40",
    "--teams",
    "3",
    "--channels-per-team",
    "6",
    "--channels-joined",
    "2",
    "--posts-per-channel",
    "2",
    "--seed",
    "7",
]
USERNAME = re.compile(r"^[a-z0-9.\-_]{1,64}$")
NAME = re.compile(r"^[a-z0-9][a-z0-9\-_]{0,63}$")
RESERVED_TEAM_PREFIXES = (
    "admin",
    "api",
    "channel",
    "claim",
    "error",
    "files",
    "help",
    "landing",
    "login",
    "mfa",
    "oauth",
    "plug",
    "plugins",
    "post",
    "signup",
    "boards",
    "playbooks",
)
ORDER = ["version", "team", "channel", "user", "post"]


def seed_lines(tmp_path: Path, *extra: str) -> list[dict[str, Any]]:
    out = tmp_path / "pop.jsonl"
    proc = run_cli("seed", *ARGS, *extra, "--out", str(out), "--force", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stderr and proc.stdout == ""
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_seed_jsonl_is_valid_bulk_import(tmp_path: Path) -> None:
    lines = seed_lines(tmp_path)
    assert lines[0] == {"type": "version", "version": 1}
    kinds = [line["type"] for line in lines]
    assert kinds == sorted(kinds, key=ORDER.index)  # the documented order
    teams = {t["team"]["name"]: t["team"] for t in lines if t["type"] == "team"}
    assert len(teams) == 3
    for name, team in teams.items():
        assert NAME.match(name) and not name.startswith(RESERVED_TEAM_PREFIXES)
        assert team["type"] == "O" and team["display_name"]
    channels = defaultdict(set)
    for line in lines:
        if line["type"] == "channel":
            ch = line["channel"]
            assert ch["team"] in teams and NAME.match(ch["name"]) and ch["type"] == "O"
            assert ch["name"] not in ("town-square", "off-topic")  # exist automatically
            channels[ch["team"]].add(ch["name"])
    assert all(len(names) == 4 for names in channels.values())
    users = [line["user"] for line in lines if line["type"] == "user"]
    assert [u["username"] for u in users] == [f"user-{i}" for i in range(1, 41)]
    assert len({u["email"] for u in users}) == 40
    per_team = defaultdict(int)
    for u in users:
        assert USERNAME.match(u["username"])
        assert u["username"] not in ("all", "channel", "matterbot", "system")
        assert u["email"] == f"{u['username']}@example.com"
        assert 8 <= len(u["password"].encode()) <= 72 and u["password"] == "Loadtest-1!"
        (membership,) = u["teams"]
        per_team[membership["name"]] += 1
        names = [c["name"] for c in membership["channels"]]
        assert names[:2] == ["town-square", "off-topic"] and len(names) == 4
        assert set(names[2:]) <= channels[membership["name"]]
    assert sorted(per_team.values()) == [13, 13, 14]  # round-robin over teams
    posts = [line["post"] for line in lines if line["type"] == "post"]
    assert len(posts) == 3 * 6 * 2
    members = {
        (u["teams"][0]["name"], c["name"], u["username"])
        for u in users
        for c in u["teams"][0]["channels"]
    }
    for post in posts:
        assert (post["team"], post["channel"], post["user"]) in members
        assert post["message"] and isinstance(post["create_at"], int)


def test_seed_is_deterministic_and_seed_changes_ids(tmp_path: Path) -> None:
    assert seed_lines(tmp_path) == seed_lines(tmp_path)
    a = Population(PopulationSpec(users=10, seed=1))
    b = Population(PopulationSpec(users=10, seed=1))
    c = Population(PopulationSpec(users=10, seed=2))
    assert [u.id for u in a.users] == [u.id for u in b.users]
    assert {u.id for u in a.users}.isdisjoint(u.id for u in c.users)
    assert all(len(u.id) == 26 for u in a.users)


def test_seed_to_stdout_and_password_override(tmp_path: Path) -> None:
    proc = run_cli("seed", "--users", "3", "--teams", "1", "--password", "Other-pass-9", timeout=60)
    assert proc.returncode == 0
    users = [
        json.loads(x)["user"] for x in proc.stdout.splitlines() if json.loads(x)["type"] == "user"
    ]
    assert [u["password"] for u in users] == ["Other-pass-9"] * 3


def test_default_population_is_big_enough_for_the_storm() -> None:
    pop = Population(PopulationSpec())
    assert len(pop.users) == 20_000 and pop.user(15_000).username == "user-15000"
    assert pop.find_login("USER-15000@example.com").number == 15_000
    # every team has its members in town-square; channel membership follows the rule
    town = pop.teams[0].channels[0]
    assert town.name == "town-square" and len(town.members) == 2_000


def test_sim_serves_the_seeded_population(tmp_path: Path) -> None:
    lines = seed_lines(tmp_path)
    users = {line["user"]["username"]: line["user"] for line in lines if line["type"] == "user"}
    posts = defaultdict(list)
    for line in lines:
        if line["type"] == "post":
            p = line["post"]
            posts[(p["team"], p["channel"])].append((p["create_at"], p["user"], p["message"]))
    spec = PopulationSpec(
        users=40, teams=3, channels_per_team=6, channels_joined=2, posts_per_channel=2, seed=7
    )
    with start_in_thread(SimSettings(port=0, metrics_port=0, population=spec)) as sim:
        for username in ("user-1", "user-2", "user-3", "user-17", "user-40"):
            expected = users[username]
            r = requests.post(
                sim.url + "/api/v4/users/login",
                timeout=5,
                json={"login_id": expected["email"], "password": expected["password"]},
            )
            assert r.status_code == 200
            assert r.json()["username"] == username
            auth = {"Authorization": "Bearer " + r.headers["Token"]}
            teams = requests.get(sim.url + "/api/v4/users/me/teams", headers=auth, timeout=5).json()
            assert [t["name"] for t in teams] == [expected["teams"][0]["name"]]
            chans = requests.get(
                sim.url + f"/api/v4/users/me/teams/{teams[0]['id']}/channels",
                headers=auth,
                timeout=5,
            ).json()
            want = [c["name"] for c in expected["teams"][0]["channels"]]
            assert [c["name"] for c in chans] == want
            for ch in chans:
                got = requests.get(
                    sim.url + f"/api/v4/channels/{ch['id']}/posts", headers=auth, timeout=5
                ).json()
                author_ids = {got["posts"][i]["user_id"] for i in got["order"]}
                authors = requests.post(
                    sim.url + "/api/v4/users/ids", headers=auth, timeout=5, json=sorted(author_ids)
                ).json()
                names = {a["id"]: a["username"] for a in authors}
                seen = sorted(
                    (
                        got["posts"][i]["create_at"],
                        names[got["posts"][i]["user_id"]],
                        got["posts"][i]["message"],
                    )
                    for i in got["order"]
                )
                assert seen == sorted(posts[(teams[0]["name"], ch["name"])])
