"""The steady-state actions: one method per handler named in ``actions.yaml``.

Each is what load-test-ng's simulcontroller action does, as web-app requests. Written as a mixin
of :class:`~mmload.load.user.MattermostUser` (the attributes declared below are what they use);
a subclass may override any of them.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from mmload.config.scenario import Scenario
from mmload.load.plan import Plan
from mmload.load.user.client import ApiClient, json_or_none
from mmload.load.user.flows import LoginFailed
from mmload.load.user.session import SessionStore
from mmload.load.ws import MMWebSocket

REPLY_SHARE = 0.18  # load-test-ng: share of CreatePost that are replies
WORDS = ["release", "deploy", "meeting", "incident", "review", "lunch", "build", "ticket"]


def sentence(rng: random.Random) -> str:
    """A message of 1-34 words (load-test-ng's length range), unique by its suffix."""
    n = rng.randint(1, 34)
    return " ".join(rng.choice(WORDS) for _ in range(n)) + f" {uuid.uuid4().hex[:6]}"


class ActionHandlers:
    """The action mix's handlers (see the module docstring)."""

    plan: Plan
    scenario: Scenario
    http: ApiClient
    session: SessionStore
    rng: random.Random
    ws: MMWebSocket | None

    # provided by ArrivalFlow
    view_channel: Callable[[str], None]
    initial_load: Callable[[], None]
    connect_websocket: Callable[[], None]
    reconnect_reload: Callable[[], None]

    def switch_channel(self) -> None:
        """SwitchChannel: view another channel of the current team."""
        if self.session.channels:
            self.view_channel(self.session.pick_channel(self.rng))

    def scroll_channel(self) -> None:
        """ScrollChannel: load older posts of the current channel."""
        channel = self.session.channel_id
        if not channel:
            return self.switch_channel()
        before = self.session.oldest_post.get(channel)
        path = f"/channels/{channel}/posts?page=0&per_page=30"
        if before:
            path += f"&before={before}"
        self.session.remember_posts(
            channel, self.http.get_json(path, "/channels/{channel_id}/posts")
        )

    def unread_check(self) -> None:
        """UnreadCheck: the unread counts of the user's teams."""
        self.http.request("GET", "/users/me/teams/unread", "/users/me/teams/unread")

    def create_post(self) -> None:
        """CreatePost: a message in the current channel; 18 % are replies (load-test-ng)."""
        s = self.session
        if not s.channel_id:
            return self.switch_channel()
        body: dict[str, Any] = {
            "channel_id": s.channel_id,
            "message": sentence(self.rng),
            "pending_post_id": f"{s.user_id}:{int(time.time() * 1000)}",
        }
        roots = s.roots.get(s.channel_id)
        if roots and self.rng.random() < REPLY_SHARE:
            body["root_id"] = self.rng.choice(roots)
        post = json_or_none(self.http.request("POST", "/posts", "/posts", json=body))
        if isinstance(post, dict) and post.get("id"):
            s.remember_own_post(post)

    def open_direct_channel(self) -> None:
        """OpenDirectOrGroupChannel: open a DM with someone and read it."""
        me, other = self.session.user_id, self.session.other_user(self.rng)
        if not other or other == me:
            return
        ch = json_or_none(
            self.http.request("POST", "/channels/direct", "/channels/direct", json=[me, other])
        )
        if isinstance(ch, dict) and ch.get("id"):
            self.view_channel(ch["id"])

    def create_direct_channel(self) -> None:
        """CreateDirectChannel: create (or get) a DM channel."""
        me, other = self.session.user_id, self.session.other_user(self.rng)
        if other and other != me:
            self.http.request("POST", "/channels/direct", "/channels/direct", json=[me, other])

    def view_global_threads(self) -> None:
        """ViewGlobalThreads: the user's followed threads in the current team."""
        s = self.session
        self.http.request(
            "GET",
            f"/users/{s.user_id}/teams/{s.team_id}/threads?per_page=25&extended=false",
            "/users/{user_id}/teams/{team_id}/threads",
        )

    def view_thread(self) -> None:
        """ViewThread: open a thread of a recent post."""
        if self.session.post_ids:
            post = self.rng.choice(self.session.post_ids)
            self.http.request("GET", f"/posts/{post}/thread", "/posts/{post_id}/thread")

    def click_permalink(self) -> None:
        """ClickPermalink: the post's thread, then its channel and membership."""
        s = self.session
        if not s.post_ids or not s.channel_id:
            return self.view_thread()
        post = self.rng.choice(s.post_ids)
        self.http.request("GET", f"/posts/{post}/thread", "/posts/{post_id}/thread")
        self.http.request("GET", f"/channels/{s.channel_id}", "/channels/{channel_id}")
        self.http.request(
            "GET", f"/channels/{s.channel_id}/members/me", "/channels/{channel_id}/members/me"
        )

    def add_reaction(self) -> None:
        """AddReaction: react to a recent post."""
        s = self.session
        if s.post_ids:
            self.http.request(
                "POST",
                "/reactions",
                "/reactions",
                json={
                    "user_id": s.user_id,
                    "post_id": self.rng.choice(s.post_ids),
                    "emoji_name": self.rng.choice(["+1", "smile", "tada", "eyes"]),
                },
            )

    def search_users(self) -> None:
        """SearchUsers: the user search of the web app."""
        term = self.plan.username(self.rng.randrange(self.scenario.population.size))[:6]
        self.http.request(
            "POST",
            "/users/search",
            "/users/search",
            json={"term": term, "team_id": self.session.team_id},
        )

    def click_user_profile(self) -> None:
        """ClickUserProfile: someone's profile and status."""
        other = self.session.other_user(self.rng)
        if other:
            self.http.request("GET", f"/users/{other}", "/users/{user_id}")
            self.http.request("POST", "/users/status/ids", "/users/status/ids", json=[other])

    def search_posts(self) -> None:
        """SearchPosts: a message search in the current team."""
        self.http.request(
            "POST",
            f"/teams/{self.session.team_id}/posts/search",
            "/teams/{team_id}/posts/search",
            json={
                "terms": self.rng.choice(WORDS),
                "is_or_search": False,
                "page": 0,
                "per_page": 20,
            },
        )

    def search_channels(self) -> None:
        """SearchChannels: find channels by name in the current team."""
        self.http.request(
            "POST",
            f"/teams/{self.session.team_id}/channels/search",
            "/teams/{team_id}/channels/search",
            json={"term": self.rng.choice(["town", "off", "chan", "a"])},
        )

    def reconnect_websocket(self) -> None:
        """ReconnectWebSocket: drop the socket and reconnect (the web app's reconnect reload)."""
        if self.ws is None:
            return
        self.ws.close()
        if not self.ws.connect({"page_load_context": "reconnect"}):
            self.ws.lost(ConnectionError("reconnect failed"))
        self.reconnect_reload()

    def full_reload(self) -> None:
        """FullReload: the page reload: initial load again and a new WebSocket."""
        if self.ws is not None:
            self.ws.close()
        self.http.request("GET", "/config/client?format=old", "/config/client")
        self.http.request("GET", "/license/client?format=old", "/license/client")
        with contextlib.suppress(LoginFailed):
            self.initial_load()
        if self.scenario.websocket.enabled:
            self.connect_websocket()
