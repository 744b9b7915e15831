"""The steady-state actions: one method per handler named in ``actions.yaml``.

Each is what load-test-ng's simulcontroller action does, as web-app requests. Written as a mixin
of :class:`~mmload.load.user.MattermostUser` (the attributes declared below are what they use);
a subclass may override any of them.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import gevent

from mmload.config.scenario import Scenario
from mmload.load.plan import Plan
from mmload.load.user.client import ApiClient, json_or_none
from mmload.load.user.session import THREADS_KEPT, SessionStore, interned_ids
from mmload.load.user.webapp11 import POSTS_QUERY
from mmload.load.ws import MMWebSocket

REPLY_SHARE = 0.18  # load-test-ng: share of CreatePost that are replies
MENTION_SHARE = 0.10  # load-test-ng createMessage: share of messages with a mention
DEFAULT_IDLE_AVG_MS = 20_000  # the scenario default the in-action pauses are written for
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
    reconnect_reload: Callable[..., None]
    page_reload: Callable[[], None]
    posts_info: Callable[[list[str], set[str]], None]

    def switch_channel(self) -> None:
        """SwitchChannel: view another channel of the current team."""
        if self.session.channels:
            self.view_channel(self.session.pick_channel(self.rng))

    def pause(self, low_s: float, high_s: float) -> None:
        """A pause inside an action (ltng: 1-10 s between scrolls), scaled with the scenario's
        idle time (default 20 s average: the pause as ltng has it)."""
        scale = self.scenario.idle.avg_ms / DEFAULT_IDLE_AVG_MS
        gevent.sleep(self.rng.uniform(low_s, high_s) * scale)

    def scroll_channel(self) -> None:
        """ScrollChannel: 1-5 pages of older posts of the current channel, each with its posts'
        info (statuses, new profiles and pictures), 1-10 s apart (ltng ``scrollChannel``)."""
        s = self.session
        channel = s.channel_id
        if not channel:
            return self.switch_channel()
        for i in range(self.rng.randint(1, 5)):
            if i:
                self.pause(1, 10)
            before = s.oldest_post.get(channel)
            path = f"/channels/{channel}/posts?page=0&per_page=30&{POSTS_QUERY}"
            if before:
                path = f"/channels/{channel}/posts?before={before}&page=0&per_page=30&{POSTS_QUERY}"
            known = set(s.known_users)
            authors = s.remember_posts(
                channel, self.http.get_json(path, "/channels/{channel_id}/posts")
            )
            self.posts_info(authors, known)

    def unread_check(self) -> None:
        """UnreadCheck: back on the tab after a while, the web app refetches the team's channels
        and memberships and marks the channel on screen viewed (ltng ``unreadCheck``; the web
        app's team controller ``handleFocus``)."""
        s = self.session
        team = s.team_id
        if not team:
            return
        self.http.request(
            "GET",
            f"/users/me/teams/{team}/channels?include_deleted=true",
            "/users/{user_id}/teams/{team_id}/channels",
        )
        self.http.request(
            "GET",
            f"/users/me/teams/{team}/channels/members",
            "/users/{user_id}/teams/{team_id}/channels/members",
        )
        if s.channel_id:
            self.mark_viewed(s.channel_id)

    def mark_viewed(self, channel_id: str) -> None:
        self.http.request(
            "POST",
            "/channels/members/me/view",
            "/channels/members/{user_id}/view",
            json={"channel_id": channel_id, "collapsed_threads_supported": True},
        )

    def typing(self, channel_id: str, parent_id: str = "") -> None:
        """The ``user_typing`` WebSocket action the message box sends."""
        if self.ws is not None:
            self.ws.send_action("user_typing", {"channel_id": channel_id, "parent_id": parent_id})

    def mention(self, channel_id: str) -> str:
        """Typing ``@name``: the autocomplete as the name is typed (ltng ``emulateMention``,
        here at most four prefixes); returns the mention."""
        s = self.session
        name = self.plan.typed_name(self.rng.randrange(self.scenario.population.size))
        for n in sorted({max(1, len(name) * k // 4) for k in range(1, 5)}):
            self.http.request(
                "GET",
                f"/users/autocomplete?in_team={s.team_id}&in_channel={channel_id}"
                f"&name={quote(name[:n])}",
                "/users/autocomplete",
            )
        return f"@{name} "

    def compose(self, channel_id: str) -> str:
        """A message as ltng writes them: 10 % mention someone."""
        text = sentence(self.rng)
        if self.rng.random() < MENTION_SHARE:
            text = self.mention(channel_id) + text
        return text

    def create_post(self) -> None:
        """CreatePost: the typing event, the message (10 % with a mention and its autocomplete),
        the post; 18 % are replies (ltng ``createPost``)."""
        s = self.session
        if not s.channel_id:
            return self.switch_channel()
        roots = s.roots.get(s.channel_id)
        root = self.rng.choice(roots) if roots and self.rng.random() < REPLY_SHARE else ""
        self.typing(s.channel_id, root)
        body: dict[str, Any] = {
            "channel_id": s.channel_id,
            "message": self.compose(s.channel_id),
            "pending_post_id": f"{s.user_id}:{int(time.time() * 1000)}",
        }
        if root:
            body["root_id"] = root
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

    def threads_page(self, extra: str = "") -> list[str]:
        """One page of the user's threads in the team (25, threads only); their root ids."""
        s = self.session
        body = self.http.get_json(
            f"/users/{s.user_id}/teams/{s.team_id}/threads?per_page=25&extended=false"
            f"&deleted=false&unread=false&since=0&totalsOnly=false&threadsOnly=true{extra}",
            "/users/{user_id}/teams/{team_id}/threads",
        )
        threads = body.get("threads") if isinstance(body, dict) else None
        found = interned_ids(t.get("id") for t in threads or [] if isinstance(t, dict))
        s.threads = list(dict.fromkeys(s.threads + found))[-THREADS_KEPT:]
        return found

    def view_global_threads(self) -> None:
        """ViewGlobalThreads: the threads screen — the first page, 1-3 older pages 1-10 s apart,
        then the unread tab (ltng ``viewGlobalThreads``)."""
        ids = self.threads_page()
        for _ in range(self.rng.randint(1, 3)):
            if not ids:
                break
            self.pause(1, 10)
            ids = self.threads_page(f"&before={ids[-1]}")
        self.threads_page("&unread=true")

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
        term = self.plan.typed_name(self.rng.randrange(self.scenario.population.size))[:6]
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
        self.page_reload()
