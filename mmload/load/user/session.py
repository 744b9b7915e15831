"""What one user knows: its session and what the server has told it so far.

Plain data and small pure choices over it (which channel next, whom to message), so the
behaviour modules stay sequences of requests and this part is testable without Locust.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

RECENT_POSTS = 200  # post ids kept (threads, reactions, permalinks pick from them)
KNOWN_USERS = 100  # other users seen as post authors
ROOTS_PER_CHANNEL = 50  # root posts kept per channel (replies go to them)


@dataclass
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

    def remember_posts(self, channel_id: str, body: Any) -> list[str]:
        """Take in a posts list (``order`` + ``posts``); returns the posts' authors."""
        if not isinstance(body, dict):
            return []
        order = body.get("order") or []
        posts = body.get("posts") or {}
        if order:
            self.oldest_post[channel_id] = order[-1]
            self.post_ids = (order[:20] + self.post_ids)[:RECENT_POSTS]
            roots = [p for p in order if not (posts.get(p) or {}).get("root_id")]
            self.roots[channel_id] = (roots[:20] + self.roots.get(channel_id, []))[
                :ROOTS_PER_CHANNEL
            ]
        authors = list({p.get("user_id") for p in posts.values() if isinstance(p, dict)} - {None})
        new = [a for a in authors if a not in self.known_users]
        self.known_users = (new + self.known_users)[:KNOWN_USERS]
        return authors

    def remember_own_post(self, post: dict[str, Any]) -> None:
        """A post this user created (in the channel on screen)."""
        self.post_ids.insert(0, post["id"])
        del self.post_ids[RECENT_POSTS:]
        if not post.get("root_id") and self.channel_id:
            self.roots.setdefault(self.channel_id, []).insert(0, post["id"])

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
