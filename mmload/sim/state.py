"""The simulator's mutable state: sessions, statuses, posts, direct channels, views, threads.

Everything is in memory with O(1) lookups; posts are bounded per channel (the oldest are
forgotten), so a long load test cannot grow the simulator without limit.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from mmload.config.sim import SimSettings
from mmload.sim.ids import new_id, seeded_id
from mmload.sim.payloads import post_body, status_body
from mmload.sim.population import EPOCH_MS, Channel, Population, User

MAX_THREADS_PER_USER = 200
MAX_SESSIONS_PER_USER = 100  # the oldest session of a user is revoked past this
MAX_DRAFTS_PER_USER = 200  # the oldest draft is forgotten past this
MAX_SCHEDULED_PER_USER = 100
MAX_BOOKMARKS_PER_CHANNEL = 50  # the server's limit (MaxBookmarksPerChannel)
MAX_PREFERENCES_PER_USER = 500


def now_ms() -> int:
    """Milliseconds since the epoch, as Mattermost timestamps are."""
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class Session:
    """A login session: the token is the bearer/cookie value; csrf the MMCSRF value."""

    token: str
    user: User
    csrf: str
    create_at: int
    expires_at: int


@dataclass(slots=True)
class ChannelState:
    """A channel's posts (ids, oldest first, bounded) and counters."""

    post_ids: deque[str]
    last_post_at: int = EPOCH_MS
    total_msg_count: int = 0


@dataclass(slots=True)
class Membership:
    """What changes in a channel membership: when it was last viewed and what was read."""

    last_viewed_at: int = 0
    msg_count: int = 0


@dataclass
class Thread:
    """A root post with replies, for the collapsed-threads view."""

    root_id: str
    channel_id: str
    participants: list[str] = field(default_factory=list)  # user ids, oldest first
    reply_count: int = 0
    last_reply_at: int = 0


class SimState:
    """Population plus everything the API changes."""

    def __init__(self, settings: SimSettings, population: Population | None = None):
        self.settings = settings
        self.pop = population or Population(settings.population)
        if settings.accounts:
            self.pop.apply_accounts(settings.accounts)
        self.sessions: dict[str, Session] = {}
        self.user_sessions: dict[int, deque[str]] = {}
        self.statuses: dict[str, dict[str, Any]] = {}
        self.posts: dict[str, dict[str, Any]] = {}
        self.channel_state: dict[str, ChannelState] = {}
        self.memberships: dict[tuple[int, str], Membership] = {}
        self.threads: dict[str, Thread] = {}
        self.user_threads: dict[str, OrderedDict[str, None]] = {}
        self.direct: dict[str, Channel] = {}  # by name "<id1>__<id2>"
        self.direct_by_id: dict[str, Channel] = {}
        self.direct_by_user: dict[int, list[Channel]] = {}
        self.reactions: dict[str, list[dict[str, Any]]] = {}
        self.drafts: dict[int, OrderedDict[tuple[str, str], dict[str, Any]]] = {}
        self.scheduled: dict[int, OrderedDict[str, dict[str, Any]]] = {}
        self.bookmarks: dict[str, OrderedDict[str, dict[str, Any]]] = {}
        self.thread_views: dict[tuple[int, str], int] = {}  # (user, root id) -> last viewed
        self.preferences: dict[int, OrderedDict[tuple[str, str], dict[str, str]]] = {}
        self.custom_status: dict[int, dict[str, Any]] = {}
        self._keep = settings.posts_kept_per_channel
        self._load_seed_posts()

    # -- posts ------------------------------------------------------------------------------
    def _load_seed_posts(self) -> None:
        for channel in self.pop.channels.values():
            self.channel_state[channel.id] = ChannelState(deque())
        for seed in self.pop.seed_posts():
            author = self.pop.user(seed.user_number)
            self.add_post(
                post_body(seed.id, seed.create_at, author.id, seed.channel_id, seed.message)
            )

    def channel(self, channel_id: str) -> Channel | None:
        """An open channel of the population or a direct channel."""
        return self.pop.channels.get(channel_id) or self.direct_by_id.get(channel_id)

    def add_post(self, post: dict[str, Any]) -> None:
        """Store ``post`` at the end of its channel, forgetting the oldest past the bound."""
        cs = self.channel_state[post["channel_id"]]
        if len(cs.post_ids) >= self._keep:
            old = cs.post_ids.popleft()
            self.posts.pop(old, None)
            self.reactions.pop(old, None)
            self.threads.pop(old, None)
        cs.post_ids.append(post["id"])
        self.posts[post["id"]] = post
        cs.last_post_at = max(cs.last_post_at, post["create_at"])
        cs.total_msg_count += 1
        root_id = post["root_id"]
        if root_id and root_id in self.posts:
            self._count_reply(self.posts[root_id], post)

    def _count_reply(self, root: dict[str, Any], reply: dict[str, Any]) -> None:
        root["reply_count"] = root.get("reply_count", 0) + 1
        root["last_reply_at"] = reply["create_at"]
        reply["reply_count"] = root["reply_count"]
        thread = self.threads.get(root["id"])
        if thread is None:
            thread = Thread(root["id"], root["channel_id"], [root["user_id"]])
            self.threads[root["id"]] = thread
        thread.reply_count = root["reply_count"]
        thread.last_reply_at = reply["create_at"]
        if reply["user_id"] not in thread.participants:
            thread.participants.append(reply["user_id"])
        for uid in (root["user_id"], reply["user_id"]):
            followed = self.user_threads.setdefault(uid, OrderedDict())
            followed[root["id"]] = None
            followed.move_to_end(root["id"])
            if len(followed) > MAX_THREADS_PER_USER:
                followed.popitem(last=False)

    # -- memberships ------------------------------------------------------------------------
    def membership(self, user: User, channel_id: str) -> Membership:
        """The (mutable) membership of ``user`` in ``channel_id``."""
        key = (user.number, channel_id)
        m = self.memberships.get(key)
        if m is None:
            m = self.memberships[key] = Membership()
        return m

    def can_read(self, user: User, channel: Channel) -> bool:
        """Members read a channel; so does anyone on the team for an open channel."""
        if channel.type == "O":
            return channel.team == user.team
        return user.number in channel.members

    def direct_channel(self, a: User, b: User) -> Channel:
        """The direct channel of ``a`` and ``b``, created on first use."""
        first, second = sorted((a.id, b.id))
        name = f"{first}__{second}"
        channel = self.direct.get(name)
        if channel is None:
            cid = seeded_id(self.pop.spec.seed, "direct", name)
            members = sorted({a.number, b.number})
            channel = Channel(cid, -1, -1, name, "", "D", a.id, members, create_at=now_ms())
            self.direct[name] = channel
            self.direct_by_id[cid] = channel
            for number in members:
                self.direct_by_user.setdefault(number, []).append(channel)
            self.channel_state[cid] = ChannelState(deque(), last_post_at=channel.create_at)
        return channel

    def directs_of(self, user: User) -> list[Channel]:
        """Direct channels ``user`` is in."""
        return self.direct_by_user.get(user.number, [])

    def forget_post(self, post_id: str) -> None:
        """A deleted post: gone from its channel's list, with its reactions and thread."""
        post = self.posts.pop(post_id, None)
        if post is None:
            return
        cs = self.channel_state.get(post["channel_id"])
        if cs is not None and post_id in cs.post_ids:
            cs.post_ids.remove(post_id)
        self.reactions.pop(post_id, None)
        self.threads.pop(post_id, None)

    # -- per-user lists (bounded) -----------------------------------------------------------
    @staticmethod
    def bounded_put(table: OrderedDict, key: Any, value: Any, limit: int) -> None:
        """Insert or replace ``key`` as the newest entry, dropping the oldest past ``limit``."""
        table[key] = value
        table.move_to_end(key)
        while len(table) > limit:
            table.popitem(last=False)

    def drafts_of(self, user: User) -> OrderedDict[tuple[str, str], dict[str, Any]]:
        return self.drafts.setdefault(user.number, OrderedDict())

    def scheduled_of(self, user: User) -> OrderedDict[str, dict[str, Any]]:
        return self.scheduled.setdefault(user.number, OrderedDict())

    def bookmarks_of(self, channel_id: str) -> OrderedDict[str, dict[str, Any]]:
        return self.bookmarks.setdefault(channel_id, OrderedDict())

    def preferences_of(self, user: User) -> OrderedDict[tuple[str, str], dict[str, str]]:
        return self.preferences.setdefault(user.number, OrderedDict())

    # -- statuses ---------------------------------------------------------------------------
    def set_status(self, user: User, status: str) -> dict[str, Any]:
        body = status_body(user.id, status, now_ms())
        self.statuses[user.id] = body
        return body

    def status_of(self, user_id: str) -> dict[str, Any]:
        return self.statuses.get(user_id) or status_body(user_id, "offline", 0)

    # -- sessions ---------------------------------------------------------------------------
    def create_session(self, user: User) -> Session:
        now = now_ms()
        hours = self.settings.session_length_web_hours
        session = Session(new_id(), user, new_id(), now, now + hours * 3_600_000)
        self.sessions[session.token] = session
        tokens = self.user_sessions.setdefault(user.number, deque())
        tokens.append(session.token)
        if len(tokens) > MAX_SESSIONS_PER_USER:  # bound memory over long, repeated storms
            self.sessions.pop(tokens.popleft(), None)
        return session

    def session(self, token: str | None) -> Session | None:
        if not token:
            return None
        session = self.sessions.get(token)
        if session is not None and session.expires_at < now_ms():
            del self.sessions[token]
            return None
        return session
