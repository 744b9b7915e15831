"""``mmload sim --database``: the per-login, first-load and WebSocket-connect writes on a real
PostgreSQL (the ``postgres`` fixture of tests/conftest.py), and a login storm that saturates a
small pool — judged by the simulator's own recorded pool waits and login service times, next
to the same storm against the in-memory store."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import pytest
import requests
import websockets
from prometheus_client.parser import text_string_to_metric_families

from mmload.cli import main
from mmload.config.sim import NAMED_PROFILES, SimSettings
from mmload.sim.launcher import running_sim
from mmload.sim.server import start_in_thread
from tests.pghost import PostgresHost
from tests.sim.conftest import small_settings

PASSWORD = "Loadtest-1!"
pytestmark = pytest.mark.slow


def db_settings(postgres: PostgresHost, pool: int, **overrides: object) -> SimSettings:
    return small_settings(database_url=postgres.dsn, db_max_open_conns=pool, **overrides)


def rows(postgres: PostgresHost, sql: str, *args: object) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(postgres.dsn, server_settings={"search_path": "mmload_sim"})
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def login(url: str, user: str, password: str = PASSWORD) -> requests.Response:
    return requests.post(
        url + "/api/v4/users/login", json={"login_id": user, "password": password}, timeout=30
    )


def test_login_first_load_and_connect_write_the_servers_rows(postgres: PostgresHost) -> None:
    profile = NAMED_PROFILES["fast"].model_copy(update={"failed_attempts": "claim"})
    settings = db_settings(postgres, 4).model_copy(update={"profile": profile})
    with start_in_thread(settings) as sim:
        assert login(sim.url, "user-2", "wrong-password").status_code == 401
        claimed = rows(postgres, "SELECT failedattempts FROM users WHERE username = 'user-2'")
        resp = login(sim.url, "user-2")
        assert resp.status_code == 200
        user_id, auth = resp.json()["id"], {"Authorization": "Bearer " + resp.headers["Token"]}
        team = requests.get(sim.url + "/api/v4/users/me/teams", headers=auth, timeout=10).json()
        cats_url = f"{sim.url}/api/v4/users/me/teams/{team[0]['id']}/channels/categories"
        first = requests.get(cats_url, headers=auth, timeout=10).json()
        second = requests.get(cats_url, headers=auth, timeout=10).json()

        async def connect() -> None:
            url = sim.url.replace("http://", "ws://") + "/api/v4/websocket"
            async with websockets.connect(url, additional_headers=auth) as ws:
                assert json.loads(await ws.recv())["event"] == "hello"

        asyncio.run(connect())
        statements = requests.get(sim.metrics_url, timeout=5).text
    assert claimed[0]["failedattempts"] == 1  # the bad password's claimed attempt
    user = rows(postgres, "SELECT failedattempts, lastlogin FROM users WHERE id = $1", user_id)
    assert user[0]["failedattempts"] == 0 and user[0]["lastlogin"] > 0  # reset; last login
    sessions = rows(postgres, "SELECT token FROM sessions WHERE userid = $1", user_id)
    assert [s["token"] for s in sessions] == [resp.headers["Token"]]
    cats = rows(postgres, "SELECT type FROM sidebarcategories WHERE userid = $1", user_id)
    assert sorted(c["type"] for c in cats) == ["channels", "direct_messages", "favorites"]
    assert first == second  # created once, read back the second time
    status = rows(postgres, "SELECT status FROM status WHERE userid = $1", user_id)
    assert status[0]["status"] == "online"
    assert 'mmload_sim_db_statements_total{statement="claim_attempt"} 2.0' in statements
    assert 'mmload_sim_db_statements_total{statement="insert_category"} 3.0' in statements


def login_service_times(metrics_url: str) -> tuple[float, float]:
    """(sum, count) of the successful logins' mattermost_api_time."""
    text = requests.get(metrics_url, timeout=5).text
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "mattermost_api_time"]
    total = count = 0.0
    for s in family.samples:
        if s.labels.get("handler") == "login" and s.labels.get("status_code") == "200":
            if s.name.endswith("_sum"):
                total += s.value
            elif s.name.endswith("_count"):
                count += s.value
    return total, count


def storm(url: str, users: int) -> list[int]:
    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(lambda i: login(url, f"user-{i}").status_code, range(1, users + 1)))


def test_a_storm_saturates_a_small_pool_where_memory_does_not(postgres: PostgresHost) -> None:
    with start_in_thread(db_settings(postgres, 2)) as sim:
        assert storm(sim.url, 60) == [200] * 60
        store = sim.sim.core.store
        max_waiting = sim.call(lambda: store.max_waiting)
        max_in_use = sim.call(lambda: store.max_in_use)
        text = requests.get(sim.metrics_url, timeout=5).text
        db_sum, db_count = login_service_times(sim.metrics_url)
    with start_in_thread(small_settings()) as mem:
        assert storm(mem.url, 60) == [200] * 60
        mem_sum, mem_count = login_service_times(mem.metrics_url)
        mem_text = requests.get(mem.metrics_url, timeout=5).text
    waits = {
        s.name: s.value
        for f in text_string_to_metric_families(text)
        if f.name == "mmload_sim_db_pool_wait_seconds"
        for s in f.samples
    }
    assert max_in_use == 2  # the pool's size, never more
    assert max_waiting >= 2  # logins queued for a connection
    assert waits["mmload_sim_db_pool_wait_seconds_count"] >= 60 * 4  # 4+ statements a login
    assert waits["mmload_sim_db_pool_wait_seconds_sum"] > 0
    assert db_count == mem_count == 60
    assert db_sum / db_count > 2 * (mem_sum / mem_count)  # recorded login service time
    assert "mmload_sim_db_pool_wait_seconds_count 0.0" in mem_text  # no pool in memory


def test_the_cli_takes_database_and_pool_size(postgres: PostgresHost) -> None:
    with running_sim(users=20, teams=1, database=postgres.dsn, db_max_open_conns=3) as sim:
        resp = login(sim.url, "user-4")
        for _ in range(600):  # the lines after the ready line reach the log a moment later
            if any("database: PostgreSQL 127.0.0.1" in line for line in sim.output):
                break
            time.sleep(0.1)
        assert any("database: PostgreSQL 127.0.0.1" in line for line in sim.output)
        assert not any(postgres.password in line for line in sim.output)
        assert resp.status_code == 200
    found = rows(
        postgres, "SELECT count(*) AS n FROM sessions WHERE token = $1", resp.headers["Token"]
    )
    assert found[0]["n"] == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://x", "--database: must start with postgresql://"),
        ("postgresql://u:p@127.0.0.1:1/x", "--database: cannot connect to the database"),
    ],
)
def test_a_bad_database_exits_2_with_one_line(url: str, expected: str, capsys) -> None:
    # The console script's entry point in-process (the one above ran the real command).
    with pytest.raises(SystemExit) as info:
        main(["sim", "--port", "0", "--no-metrics", "--database", url])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert len(err.strip().splitlines()) == 1 and expected in err, err
    assert "Traceback" not in err and ":p@" not in err
