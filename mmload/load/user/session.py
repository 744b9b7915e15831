"""What one user knows: its session and what the server has told it so far.

Plain data and small pure choices over it (which channel next, whom to message), so the
behaviour modules stay sequences of requests and this part is testable without Locust.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

RECENT_POSTS = 100  # post ids kept (threads, reactions, permalinks pick from them)
KNOWN_USERS = 100  # other users seen as post authors
ROOTS_PER_CHANNEL = 30  # root posts kept per channel (replies go to them)
OWN_POSTS = 20  # the user's own recent posts (edits and deletes pick from them)
THREADS_KEPT = 50  # root ids of threads (posts with replies) seen
ME_FIELDS = ("id", "username", "roles")  # of users/me: what a user's later calls need
CHANNEL_FIELDS = ("id", "name", "type", "team_id")  # of each channel: what its views need
CATEGORY_FIELDS = (  # a SidebarCategory as updateCategoriesForTeamForUser takes it back
    *("id", "user_id", "team_id", "type", "display_name", "sorting", "sort_order"),
    *("muted", "collapsed", "channel_ids"),
)


def interned_ids(values: Iterable[Any]) -> list[str]:
    """The string ids among ``values``, interned: the users of a process that see the same
    posts and authors keep one copy of each id (a 26-character id is a 75-byte object), where
    each user's decoded answers would give it its own; an interned id goes when the last user
    forgets it."""
    return [sys.intern(v) for v in values if isinstance(v, str) and v]


def slim(body: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Only ``fields`` of a decoded object, its strings interned: a user keeps what its later
    calls use, not the server's whole answer (a user holding its initial load: ~20 KiB)."""
    return {k: sys.intern(v) if type(v) is str else v for k, v in body.items() if k in fields}


@dataclass(slots=True)
class SessionStore:
    """A user's session (token, CSRF, cookie header) and its view of the server."""

    token: str | None = None
    csrf: str | None = None
    cookie_header: str | None = None
    logged_in: bool = False
    me: dict[str, Any] = field(default_factory=dict)
    user_id: str = "me"
    team_id: str | None = None
    channels: list[dict[str, Any]] = field(default_factory=list)
    channel_id: str | None = None  # the channel on screen
    viewed: dict[str, int] = field(default_factory=dict)  # channel -> last view (epoch ms)
    post_ids: list[str] = field(default_factory=list)  # recent posts, newest first
    oldest_post: dict[str, str] = field(default_factory=dict)  # channel -> oldest post loaded
    known_users: list[str] = field(default_factory=list)
    roots: dict[str, list[str]] = field(default_factory=dict)  # root post ids per channel
    roles: set[str] = field(default_factory=set)  # of me and my team memberships
    loaded_roles: set[str] = field(default_factory=set)  # roles fetched (loadRolesIfNeeded)
    licensed: bool = False  # license/client said IsLicensed (bookmarks need it)
    own_posts: list[tuple[str, str]] = field(default_factory=list)  # (post id, channel id)
    drafts: list[tuple[str, str]] = field(default_factory=list)  # (channel id, root id)
    threads: list[str] = field(default_factory=list)  # root ids of threads with replies seen
    scheduled: list[str] = field(default_factory=list)  # scheduled post ids
    bookmarks: dict[str, list[str]] = field(default_factory=dict)  # channel -> bookmark ids
    categories: list[dict[str, Any]] = field(default_factory=list)  # the team's sidebar
    perf_client_id: str | None = None  # the performance reporter's id for this page load
    root_of: dict[str, str] = field(default_factory=dict)  # reply -> root, for recent posts

    def remember_posts(self, channel_id: str, body: Any) -> list[str]:
        """Take in a posts list (``order`` + ``posts``); returns the posts' authors."""
        if not isinstance(body, dict):
            return []
        order = interned_ids(body.get("order") or [])
        posts = body.get("posts") or {}
        if order:
            self.oldest_post[channel_id] = order[-1]
            self.post_ids = (order[:20] + self.post_ids)[:RECENT_POSTS]
            roots = [p for p in order if not (posts.get(p) or {}).get("root_id")]
            replied = set(interned_ids((posts.get(p) or {}).get("root_id") for p in order))
            for p in order[:20]:
                root = (posts.get(p) or {}).get("root_id")
                if root and isinstance(root, str):
                    self.root_of[p] = sys.intern(root)
            self._prune_roots()
            self.threads = list(dict.fromkeys([*self.threads, *replied]))[-THREADS_KEPT:]
            self.roots[channel_id] = (roots[:20] + self.roots.get(channel_id, []))[
                :ROOTS_PER_CHANNEL
            ]
        posted = (p.get("user_id") for p in posts.values() if isinstance(p, dict))
        authors = list(set(interned_ids(posted)))
        new = [a for a in authors if a not in self.known_users]
        self.known_users = (new + self.known_users)[:KNOWN_USERS]
        return authors

    def remember_own_post(self, post: dict[str, Any]) -> None:
        """A post this user created (in the channel on screen)."""
        post = {**post, "id": sys.intern(post["id"])}
        self.post_ids.insert(0, post["id"])
        del self.post_ids[RECENT_POSTS:]
        self.own_posts.insert(0, (post["id"], post.get("channel_id") or ""))
        del self.own_posts[OWN_POSTS:]
        root = post.get("root_id")
        if root:  # replying follows the thread
            self.root_of[post["id"]] = root
            self.threads = [*(t for t in self.threads if t != root), root][-THREADS_KEPT:]
        if not post.get("root_id") and self.channel_id:
            self.roots.setdefault(self.channel_id, []).insert(0, post["id"])

    def remember_me(self, me: dict[str, Any]) -> None:
        """Take in ``users/me``: its id, username and roles."""
        self.me = slim(me, ME_FIELDS)
        self.user_id = me.get("id", self.user_id)

    def remember_channels(self, channels: list[Any]) -> None:
        """Take in the current team's channels (id, name, type and team of each)."""
        self.channels = [slim(c, CHANNEL_FIELDS) for c in channels if isinstance(c, dict)]

    def remember_categories(self, body: Any) -> None:
        """Take in ``getCategoriesForTeamForUser``'s ``{categories, order}``."""
        cats = body.get("categories") if isinstance(body, dict) else None
        if isinstance(cats, list):
            self.categories = [
                slim(c, CATEGORY_FIELDS) for c in cats if isinstance(c, dict) and c.get("id")
            ]

    def forget_post(self, post_id: str) -> None:
        """A deleted post (by this user, or a ``post_deleted`` event); a root takes its replies
        with it, as on the server."""
        gone = {post_id, *(p for p, r in self.root_of.items() if r == post_id)}
        self.own_posts = [p for p in self.own_posts if p[0] not in gone]
        self.post_ids = [p for p in self.post_ids if p not in gone]
        self.threads = [t for t in self.threads if t not in gone]
        for roots in self.roots.values():
            roots[:] = [r for r in roots if r not in gone]
        for p in gone:
            self.root_of.pop(p, None)

    def _prune_roots(self) -> None:
        if len(self.root_of) > RECENT_POSTS:
            keep = set(self.post_ids) | {p for p, _ in self.own_posts}
            self.root_of = {p: r for p, r in self.root_of.items() if p in keep}

    def pick_channel(self, rng: random.Random, default_first: bool = False) -> str:
        """The channel to view next: town-square (or the first) on the first load, else another
        channel of the team than the one on screen."""
        if default_first:
            for c in self.channels:
                if c.get("name") == "town-square":
                    return c["id"]
            return self.channels[0]["id"]
        others = [c["id"] for c in self.channels if c["id"] != self.channel_id]
        return rng.choice(others or [c["id"] for c in self.channels])

    def other_user(self, rng: random.Random) -> str | None:
        """Someone this user has seen (a post author), not the user itself."""
        others = [u for u in self.known_users if u != self.user_id]
        return rng.choice(others) if others else None
