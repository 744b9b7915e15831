"""The store on a real PostgreSQL (``mmload sim --database postgresql://…``).

Tables shaped like the server's hot tables (``Users``, ``Sessions``, ``SidebarCategories``,
``SidebarChannels``, ``Status``: the server's column names, unquoted, so lowercase in
PostgreSQL), in a schema of their own (``mmload_sim``) that the simulator creates and empties at
start. Each store method runs the statement(s) the server's SQL store runs at that point (see
``STATEMENTS`` and docs/simulator.md), through an asyncpg pool sized like
``SqlSettings.MaxOpenConns``: when every connection is busy, requests wait for one, and the
simulator records that wait (``mmload_sim_db_pool_wait_seconds``), the waiters and the
connections in use, so a test can see the pool saturate.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from mmload.config.sim import SimSettings
from mmload.errors import UserError
from mmload.sim.metrics import SimMetrics
from mmload.sim.population import EPOCH_MS, Population, User
from mmload.sim.state import Session

SCHEMA = "mmload_sim"

DDL = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
SET search_path TO {SCHEMA};
CREATE TABLE users (
    id varchar(26) PRIMARY KEY,
    createat bigint, updateat bigint, deleteat bigint,
    username varchar(64) UNIQUE, password varchar(128), authdata varchar(128),
    authservice varchar(32), email varchar(128) UNIQUE, emailverified boolean,
    nickname varchar(64), firstname varchar(64), lastname varchar(64), position varchar(128),
    roles varchar(256), allowmarketing boolean, props jsonb, notifyprops jsonb,
    lastpasswordupdate bigint, lastpictureupdate bigint, failedattempts integer,
    locale varchar(5), timezone jsonb, mfaactive boolean, mfasecret varchar(128),
    remoteid varchar(26), lastlogin bigint DEFAULT 0, mfausedtimestamps jsonb
);
CREATE TABLE sessions (
    id varchar(26) PRIMARY KEY, token varchar(26), createat bigint, expiresat bigint,
    lastactivityat bigint, userid varchar(26), deviceid varchar(512), roles varchar(256),
    isoauth boolean, expirednotify boolean, props jsonb
);
CREATE INDEX idx_sessions_user_id ON sessions (userid);
CREATE INDEX idx_sessions_token ON sessions (token);
CREATE TABLE sidebarcategories (
    id varchar(128) PRIMARY KEY, userid varchar(26), teamid varchar(26), sortorder bigint,
    sorting varchar(64), type varchar(64), displayname varchar(64), muted boolean,
    collapsed boolean
);
CREATE INDEX idx_sidebarcategories_userid_teamid ON sidebarcategories (userid, teamid);
CREATE TABLE sidebarchannels (
    channelid varchar(26), userid varchar(26), categoryid varchar(128), sortorder bigint,
    PRIMARY KEY (channelid, categoryid)
);
CREATE TABLE status (
    userid varchar(26) PRIMARY KEY, status varchar(32), manual boolean,
    lastactivityat bigint, dndendtime bigint, prevstatus varchar(32)
);
"""

# What each statement stands for on the server (server/channels/store/sqlstore).
STATEMENTS: dict[str, str] = {
    "claim_attempt": (
        "UPDATE users SET failedattempts = failedattempts + 1 WHERE id = $1 AND failedattempts < $2"
    ),  # TryIncrementFailedPasswordAttempts (11.9+): the row lock serialises a user's logins
    "read_attempts": "SELECT failedattempts FROM users WHERE id = $1",  # the user re-read
    "set_attempts": "UPDATE users SET failedattempts = $2 WHERE id = $1",  # UpdateFailed…(0)
    "count_failure": (
        "UPDATE users SET failedattempts = failedattempts + 1 WHERE id = $1"
    ),  # UpdateFailedPasswordAttempts(FailedAttempts + 1), before 11.9
    "insert_session": (
        "INSERT INTO sessions (id, token, createat, expiresat, lastactivityat, userid, "
        "deviceid, roles, isoauth, expirednotify, props) "
        "VALUES ($1, $2, $3, $4, $3, $5, '', 'system_user', false, false, '{}')"
    ),  # SessionStore.Save
    "delete_session": "DELETE FROM sessions WHERE id = $1",  # SessionStore.Remove
    "last_login": "UPDATE users SET lastlogin = $2 WHERE id = $1",  # UserStore.UpdateLastLogin
    "update_password": (
        "UPDATE users SET password = $2, lastpasswordupdate = $3, updateat = $3, "
        "failedattempts = 0 WHERE id = $1"
    ),  # UserStore.UpdatePassword: the first v11 login's PBKDF2 re-hash
    "get_categories": (
        "SELECT id, userid, teamid, sortorder, sorting, type, displayname, muted, collapsed "
        "FROM sidebarcategories WHERE userid = $1 AND teamid = $2 ORDER BY sortorder"
    ),  # ChannelStore.GetSidebarCategoriesForTeamForUser
    "insert_category": (
        "INSERT INTO sidebarcategories (id, userid, teamid, sortorder, sorting, type, "
        "displayname, muted, collapsed) VALUES ($1, $2, $3, $4, $5, $6, $7, false, false) "
        "ON CONFLICT (id) DO NOTHING"
    ),  # CreateInitialSidebarCategories, in one transaction
    "save_status": (
        "INSERT INTO status (userid, status, manual, lastactivityat, dndendtime, prevstatus) "
        "VALUES ($1, $2, $3, $4, 0, '') ON CONFLICT (userid) DO UPDATE SET "
        "status = excluded.status, manual = excluded.manual, "
        "lastactivityat = excluded.lastactivityat"
    ),  # StatusStore.SaveOrUpdate
}


class PostgresStore:
    """The store's steps as SQL on PostgreSQL, through a bounded pool."""

    def __init__(self, pool: asyncpg.Pool, metrics: SimMetrics, max_open: int):
        self.pool = pool
        self.metrics = metrics
        self.max_open = max_open
        self.waiting = 0
        self.max_waiting = 0
        self.in_use = 0
        self.max_in_use = 0

    @classmethod
    async def connect(
        cls, settings: SimSettings, pop: Population, metrics: SimMetrics, stored_password: str
    ) -> PostgresStore:
        """Open the pool, (re)create the tables and load the population's users."""
        assert settings.database_url is not None
        max_open = settings.db_max_open_conns
        try:
            pool = await asyncpg.create_pool(
                settings.database_url,
                min_size=min(settings.db_max_idle_conns, max_open),
                max_size=max_open,
                server_settings={"search_path": SCHEMA},
                command_timeout=30,  # SqlSettings.QueryTimeout
            )
        except (OSError, asyncpg.PostgresError, ValueError) as exc:
            raise UserError(f"cannot connect to the database: {exc}", field="--database") from None
        async with pool.acquire() as conn:
            await conn.execute(DDL)
            await conn.copy_records_to_table(
                "users", records=_user_rows(pop, stored_password), columns=USER_COLUMNS
            )
            await conn.execute("ANALYZE users")
        return cls(pool, metrics, max_open)

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; the time spent waiting for it is recorded."""
        m = self.metrics
        self.waiting += 1
        self.max_waiting = max(self.max_waiting, self.waiting)
        m.db_pool_waiting.set(self.waiting)
        start = time.perf_counter()
        try:
            conn = await self.pool.acquire()
        finally:
            self.waiting -= 1
            m.db_pool_waiting.set(self.waiting)
        m.db_pool_wait.observe(time.perf_counter() - start)
        self.in_use += 1
        self.max_in_use = max(self.max_in_use, self.in_use)
        m.db_pool_in_use.set(self.in_use)
        try:
            yield conn
        finally:
            self.in_use -= 1
            m.db_pool_in_use.set(self.in_use)
            await self.pool.release(conn)

    async def _execute(self, name: str, *args: Any) -> str:
        self.metrics.db_statements.labels(name).inc()
        async with self._conn() as conn:
            return await conn.execute(STATEMENTS[name], *args)

    # -- the Store interface ----------------------------------------------------------------
    async def claim_attempt(self, user: User, max_attempts: int, claim: bool) -> bool:
        if claim:
            status = await self._execute("claim_attempt", user.id, max_attempts)
            return status.endswith(" 1")
        self.metrics.db_statements.labels("read_attempts").inc()
        async with self._conn() as conn:
            failed = await conn.fetchval(STATEMENTS["read_attempts"], user.id)
        return (failed or 0) < max_attempts

    async def attempt_result(self, user: User, ok: bool, claimed: bool) -> None:
        if ok:
            await self._execute("set_attempts", user.id, 0)
        elif not claimed:  # before 11.9: the count read before the check, plus one
            await self._execute("count_failure", user.id)

    async def save_session(self, session: Session) -> None:
        await self._execute(
            "insert_session",
            session.token,  # the simulator's session id is its token
            session.token,
            session.create_at,
            session.expires_at,
            session.user.id,
        )

    async def remove_session(self, session: Session) -> None:
        await self._execute("delete_session", session.token)

    async def update_last_login(self, user: User, at_ms: int) -> None:
        await self._execute("last_login", user.id, at_ms)

    async def update_password(self, user: User, stored_hash: str, at_ms: int) -> None:
        await self._execute("update_password", user.id, stored_hash, at_ms)

    async def categories(
        self, user: User, team_id: str, initial: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], bool]:
        m = self.metrics
        m.db_statements.labels("get_categories").inc()
        async with self._conn() as conn:
            rows = await conn.fetch(STATEMENTS["get_categories"], user.id, team_id)
            if rows:
                return [_category(r) for r in rows], False
            async with conn.transaction():
                for c in initial:
                    m.db_statements.labels("insert_category").inc()
                    await conn.execute(
                        STATEMENTS["insert_category"],
                        c["id"],
                        user.id,
                        team_id,
                        c["sort_order"],
                        c["sorting"],
                        c["type"],
                        c["display_name"],
                    )
        return initial, True

    async def save_status(self, status: dict[str, Any]) -> None:
        await self._execute(
            "save_status",
            status["user_id"],
            status["status"],
            status["manual"],
            status["last_activity_at"],
        )

    async def close(self) -> None:
        await self.pool.close()


USER_COLUMNS = [
    "id",
    "createat",
    "updateat",
    "deleteat",
    "username",
    "password",
    "authdata",
    "authservice",
    "email",
    "emailverified",
    "nickname",
    "firstname",
    "lastname",
    "position",
    "roles",
    "allowmarketing",
    "props",
    "notifyprops",
    "lastpasswordupdate",
    "lastpictureupdate",
    "failedattempts",
    "locale",
    "timezone",
    "mfaactive",
    "mfasecret",
    "remoteid",
    "lastlogin",
    "mfausedtimestamps",
]

_NOTIFY = json.dumps({"desktop": "mention", "email": "true", "push": "mention"})
_TZ = json.dumps({"useAutomaticTimezone": "true"})


def _user_rows(pop: Population, stored_password: str) -> list[tuple[Any, ...]]:
    return [
        (
            u.id,
            EPOCH_MS,
            EPOCH_MS,
            0,
            u.username,
            stored_password,
            None,
            "",
            u.email,
            True,
            "",
            u.first_name,
            u.last_name,
            "",
            "system_user",
            False,
            "{}",
            _NOTIFY,
            EPOCH_MS,
            0,
            0,
            "en",
            _TZ,
            False,
            "",
            None,
            0,
            "[]",
        )
        for u in pop.users
    ]


def _category(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "user_id": row["userid"],
        "team_id": row["teamid"],
        "sort_order": row["sortorder"],
        "sorting": row["sorting"],
        "type": row["type"],
        "display_name": row["displayname"],
        "muted": row["muted"],
        "collapsed": row["collapsed"],
    }
