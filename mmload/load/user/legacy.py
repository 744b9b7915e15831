"""The older web app's initial load and channel view (scenario ``client: webapp-legacy``): one
call after the other, the current team's channels and members through the per-team endpoints,
kept so ESR runs against older servers stay comparable. Written as a mixin of
:class:`~mmload.load.user.MattermostUser`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from mmload.load.user.client import ApiClient
from mmload.load.user.session import SessionStore
from mmload.load.user.webapp11 import LoginFailed


class LegacyFlow:
    """The older web app's load (see the module docstring)."""

    http: ApiClient
    session: SessionStore
    rng: random.Random
    view_channel: Callable[[str], None]
    posts_since: Callable[[str], list[str]]

    def legacy_initial_load(self) -> None:
        """The older web app's first page load: one call after the other, per team."""
        http, s = self.http, self.session
        me = http.get_json("/users/me", "/users/me")
        if not isinstance(me, dict):
            raise LoginFailed("users/me failed")
        s.remember_me(me)
        http.request("GET", "/users/me/preferences", "/users/me/preferences")
        teams = http.get_json("/users/me/teams", "/users/me/teams")
        members = http.get_json("/users/me/teams/members", "/users/me/teams/members")
        http.request("GET", "/users/me/teams/unread", "/users/me/teams/unread")
        roles = set((me.get("roles") or "system_user").split())
        for m in members if isinstance(members, list) else []:
            roles.update((m.get("roles") or "").split())
        roles.add("channel_user")
        http.request("POST", "/roles/names", "/roles/names", json=sorted(r for r in roles if r))
        if not teams:
            raise LoginFailed("the user is in no team")
        s.team_id = teams[0]["id"]
        self.legacy_load_team()
        if s.channels:
            self.view_channel(s.pick_channel(self.rng, default_first=True))

    def legacy_load_team(self) -> None:
        """The current team's channels and channel members."""
        team = self.session.team_id
        chans = self.http.get_json(
            f"/users/me/teams/{team}/channels", "/users/{user_id}/teams/{team_id}/channels"
        )
        self.http.request(
            "GET",
            f"/users/me/teams/{team}/channels/members",
            "/users/{user_id}/teams/{team_id}/channels/members",
        )
        if isinstance(chans, list):
            self.session.remember_channels(
                [c for c in chans if c.get("type") in ("O", "P")] or chans
            )

    def legacy_view_channel(self, channel_id: str) -> None:
        """Posts (since the last view), the posters' statuses, channel stats, mark viewed."""
        http, s = self.http, self.session
        before = set(s.known_users)
        authors = self.posts_since(channel_id)
        if authors:
            http.request("POST", "/users/status/ids", "/users/status/ids", json=authors[:50])
            missing = [a for a in authors if a not in before]
            if missing:
                http.request("POST", "/users/ids", "/users/ids", json=missing[:50])
        http.request(
            "GET",
            f"/channels/{channel_id}/stats?exclude_files_count=true",
            "/channels/{channel_id}/stats",
        )
        http.request(
            "POST",
            "/channels/members/me/view",
            "/channels/members/{user_id}/view",
            json={
                "channel_id": channel_id,
                "prev_channel_id": s.channel_id or "",
                "collapsed_threads_supported": True,
            },
        )
        s.viewed[channel_id] = int(time.time() * 1000)
        s.channel_id = channel_id
