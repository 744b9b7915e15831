"""The rest of load-test-ng's action list: drafts, thread read state and following, post edits
and deletes, all-teams search, custom status, group-channel search, sidebar categories
(``loadtest/control/simulcontroller/`` ``drafts.go``, ``actions.go``); scheduled posts and
bookmarks are in :mod:`mmload.load.user.planned_handlers`.

As in ltng, an action with nothing to act on (no draft to delete, no own post to edit) sends
nothing. Written as a mixin of
:class:`~mmload.load.user.MattermostUser`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from mmload.config.scenario import Scenario
from mmload.load.plan import Plan
from mmload.load.user.client import ApiClient
from mmload.load.user.handlers import WORDS
from mmload.load.user.session import SessionStore

DRAFT_REPLY_SHARE = 0.87  # ltng upsertDraft: 87 % of drafts are thread replies
KEPT = 20  # drafts remembered


class MoreHandlers:
    """Handlers of the less frequent actions (see the module docstring)."""

    plan: Plan
    scenario: Scenario
    http: ApiClient
    session: SessionStore
    rng: random.Random

    # provided by ActionHandlers
    typing: Callable[..., None]
    compose: Callable[[str], str]
    threads_page: Callable[..., list[str]]
    view_global_threads: Callable[[], None]

    def _root_in_channel(self, share: float) -> str:
        roots = self.session.roots.get(self.session.channel_id or "")
        return self.rng.choice(roots) if roots and self.rng.random() < share else ""

    # ---- drafts ---------------------------------------------------------------------------
    def get_drafts(self) -> None:
        """GetDrafts: the team's drafts (the drafts view)."""
        s = self.session
        drafts = self.http.get_json(
            f"/users/{s.user_id}/teams/{s.team_id}/drafts",
            "/users/{user_id}/teams/{team_id}/drafts",
        )
        if isinstance(drafts, list):
            s.drafts = [
                (d["channel_id"], d.get("root_id") or "")
                for d in drafts[:KEPT]
                if isinstance(d, dict) and d.get("channel_id")
            ]

    def upsert_draft(self) -> None:
        """UpsertDraft: the typing event, then the draft (87 % in a thread)."""
        s = self.session
        if not s.channel_id:
            return
        root = self._root_in_channel(DRAFT_REPLY_SHARE)
        self.typing(s.channel_id, root)
        body = {
            "channel_id": s.channel_id,
            "root_id": root,
            "message": self.compose(s.channel_id),
            "create_at": int(time.time() * 1000),
        }
        if self.http.request("POST", "/drafts", "/drafts", json=body).status_code in (200, 201):
            key = (s.channel_id, root)
            s.drafts = [key, *(d for d in s.drafts if d != key)][:KEPT]

    def delete_draft(self) -> None:
        """DeleteDraft: one of the team's drafts (nothing when the user has none)."""
        s = self.session
        if not s.drafts:
            return
        channel, root = s.drafts.pop(self.rng.randrange(len(s.drafts)))
        path = f"/users/{s.user_id}/channels/{channel}/drafts"
        name = "/users/{user_id}/channels/{channel_id}/drafts"
        if root:
            path, name = f"{path}/{root}", f"{name}/{{thread_id}}"
        self.http.request("DELETE", path, name)

    # ---- threads --------------------------------------------------------------------------
    def _thread(self) -> str | None:
        s = self.session
        if not s.threads:
            self.threads_page()
        return self.rng.choice(s.threads) if s.threads else None

    def _thread_path(self, thread: str) -> str:
        s = self.session
        return f"/users/{s.user_id}/teams/{s.team_id}/threads/{thread}"

    def update_thread_read(self) -> None:
        """UpdateThreadRead: mark one of the user's threads read now."""
        thread = self._thread()
        if thread:
            self.http.request(
                "PUT",
                f"{self._thread_path(thread)}/read/{int(time.time() * 1000)}",
                "/users/{user_id}/teams/{team_id}/threads/{thread_id}/read/{timestamp}",
            )

    def follow_thread(self) -> None:
        """FollowThread: follow a thread (a post with replies) the user has seen."""
        thread = self._thread()
        if thread:
            name = "/users/{user_id}/teams/{team_id}/threads/{thread_id}/following"
            self.http.request("PUT", f"{self._thread_path(thread)}/following", name)

    def unfollow_thread(self) -> None:
        """UnfollowThread: stop following one of the user's threads."""
        thread = self._thread()
        if thread:
            name = "/users/{user_id}/teams/{team_id}/threads/{thread_id}/following"
            self.http.request("DELETE", f"{self._thread_path(thread)}/following", name)

    def mark_all_threads_read(self) -> None:
        """MarkAllThreadsInTeamAsRead."""
        s = self.session
        self.http.request(
            "PUT",
            f"/users/{s.user_id}/teams/{s.team_id}/threads/read",
            "/users/{user_id}/teams/{team_id}/threads/read",
        )

    # ---- posts ----------------------------------------------------------------------------
    def _own_post(self) -> str | None:
        s = self.session
        mine = [p for p, c in s.own_posts if c == s.channel_id]
        return self.rng.choice(mine) if mine else None

    def edit_post(self) -> None:
        """EditPost: a new message for one of the user's posts in the channel."""
        post = self._own_post()
        if post and self.session.channel_id:
            self.http.request(
                "PUT",
                f"/posts/{post}/patch",
                "/posts/{post_id}/patch",
                json={"message": self.compose(self.session.channel_id)},
            )

    def delete_post(self) -> None:
        """DeletePost: one of the user's posts in the channel."""
        post = self._own_post()
        if post:
            self.http.request("DELETE", f"/posts/{post}", "/posts/{post_id}")
            self.session.forget_post(post)

    def search_posts_all_teams(self) -> None:
        """SearchPostsAllTeams (10.7+): the message search across every team."""
        words = " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(1, 4)))
        self.http.request(
            "POST",
            "/posts/search",
            "/posts/search",
            json={
                "terms": words,
                "is_or_search": False,
                "include_deleted_channels": False,
                "time_zone_offset": 0,
                "page": 0,
                "per_page": 20,
            },
        )

    # ---- people, groups, sidebar ----------------------------------------------------------
    def update_custom_status(self) -> None:
        """UpdateCustomStatus: an emoji and a sentence for thirty minutes."""
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1800))
        self.http.request(
            "PUT",
            "/users/me/status/custom",
            "/users/{user_id}/status/custom",
            json={
                "emoji": self.rng.choice(["calendar", "coffee", "palm_tree", "house"]),
                "text": "back soon",
                "duration": "thirty_minutes",
                "expires_at": expires,
            },
        )

    def remove_custom_status(self) -> None:
        """RemoveCustomStatus."""
        self.http.request("DELETE", "/users/me/status/custom", "/users/{user_id}/status/custom")

    def search_group_channels(self) -> None:
        """SearchGroupChannels: 1-4 characters of someone's name typed in the DM/GM search."""
        name = self.plan.typed_name(self.rng.randrange(self.scenario.population.size))
        for n in range(1, self.rng.randint(1, 4) + 1):
            self.http.request(
                "POST", "/channels/group/search", "/channels/group/search", json={"term": name[:n]}
            )

    def update_sidebar_category(self) -> None:
        """UpdateSidebarCategory: the sidebar's categories, one of them collapsed or expanded."""
        s = self.session
        path = f"/users/{s.user_id}/teams/{s.team_id}/channels/categories"
        name = "/users/{user_id}/teams/{team_id}/channels/categories"
        if not s.categories:
            s.remember_categories(self.http.get_json(path, name))
        if s.categories:
            cat = dict(self.rng.choice(s.categories))
            cat["collapsed"] = not cat.get("collapsed", False)
            self.http.request("PUT", path, name, json=[cat])
