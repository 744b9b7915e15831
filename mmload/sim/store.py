"""The per-login and per-load writes a Mattermost node makes to its database, behind one interface.

``MemoryStore`` (the default) keeps them in dicts; ``mmload.sim.pgstore.PostgresStore`` runs the
same steps as SQL statements against tables shaped like the server's (``--database``). Handlers
call the store at the points where the server's app layer calls its SQL store:

- login: ``claim_attempt`` (the failed-attempts check or claim), ``attempt_result`` (reset on
  success, count on failure), ``save_session``, ``update_last_login``, ``update_password`` (the
  first v11 login of a bcrypt user);
- first load: ``categories`` (the sidebar categories, created on a user's first load of a team);
- login, WebSocket connect, logout: ``save_status``; logout: ``remove_session``.
"""

from __future__ import annotations

from typing import Any, Protocol

from mmload.sim.population import User
from mmload.sim.state import Session


class Store(Protocol):
    """What the simulator writes through; every method may wait for a database."""

    async def claim_attempt(self, user: User, max_attempts: int, claim: bool) -> bool:
        """False when the account is locked. ``claim``: count this attempt up front under a row
        lock (11.9+); else only read the count (the mutex made that safe before 11.9)."""

    async def attempt_result(self, user: User, ok: bool, claimed: bool) -> None:
        """Reset the count after a good password; count a bad one unless it was claimed."""

    async def save_session(self, session: Session) -> None: ...

    async def remove_session(self, session: Session) -> None: ...

    async def update_last_login(self, user: User, at_ms: int) -> None: ...

    async def update_password(self, user: User, stored_hash: str, at_ms: int) -> None: ...

    async def categories(
        self, user: User, team_id: str, initial: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], bool]:
        """The user's categories of the team; ``initial`` are created when there are none.
        Returns the categories and whether they were created now."""

    async def save_status(self, status: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...


class MemoryStore:
    """The default store: the same steps on dicts (no database cost)."""

    def __init__(self) -> None:
        self.failed_attempts: dict[int, int] = {}
        self.last_login: dict[int, int] = {}
        self.passwords: dict[int, str] = {}
        self.sidebar: dict[tuple[int, str], list[dict[str, Any]]] = {}
        self.categories_created = 0

    async def claim_attempt(self, user: User, max_attempts: int, claim: bool) -> bool:
        failed = self.failed_attempts.get(user.number, 0)
        if failed >= max_attempts:
            return False
        if claim:
            self.failed_attempts[user.number] = failed + 1
        return True

    async def attempt_result(self, user: User, ok: bool, claimed: bool) -> None:
        if ok:
            self.failed_attempts.pop(user.number, None)
        elif not claimed:
            self.failed_attempts[user.number] = self.failed_attempts.get(user.number, 0) + 1

    async def save_session(self, session: Session) -> None:
        return None

    async def remove_session(self, session: Session) -> None:
        return None

    async def update_last_login(self, user: User, at_ms: int) -> None:
        self.last_login[user.number] = at_ms

    async def update_password(self, user: User, stored_hash: str, at_ms: int) -> None:
        self.passwords[user.number] = stored_hash

    async def categories(
        self, user: User, team_id: str, initial: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], bool]:
        key = (user.number, team_id)
        found = self.sidebar.get(key)
        if found is not None:
            return found, False
        self.sidebar[key] = initial
        self.categories_created += 1
        return initial, True

    async def save_status(self, status: dict[str, Any]) -> None:
        return None

    async def close(self) -> None:
        return None
