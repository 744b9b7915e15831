"""The 11.x web app's login, initial load and reconnect reload, call by call.

Each phase is what the browser issues together, run as a small gevent group (the browser's
``Promise.all`` and independent ``dispatch``es); the phases follow one another as the web app
awaits them. The sources (mattermost/mattermost ``webapp/``) are in the table of
``docs/scenarios.md``; the older web app's sequence stays in :mod:`mmload.load.user.flows`
(scenario ``client: webapp-legacy``).

Written as a mixin of :class:`~mmload.load.user.MattermostUser`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import gevent

from mmload.config.scenario import Scenario
from mmload.load.user.client import ApiClient, json_or_none
from mmload.load.user.session import SessionStore
from mmload.load.ws import MMWebSocket

MEMBERS_PAGE = 200  # fetchAllMyTeamsChannelsAndChannelMembersREST: pages of 200, at most 3
MAX_MEMBER_PAGES = 3
POSTS_AROUND = 30  # getPostsUnread's DEFAULT_LIMIT_BEFORE / DEFAULT_LIMIT_AFTER
IMAGES_PER_VIEW = 10  # profile pictures of new authors the browser loads for one channel view
STATUS_IDS_MAX = 50
POSTS_QUERY = "skipFetchThreads=false&collapsedThreads=true&collapsedThreadsExtended=false"


class LoginFailed(Exception):
    """The login flow could not finish (the arrival is recorded as failed)."""


def parallel(*jobs: Callable[[], Any]) -> list[Any]:
    """Run ``jobs`` as one group, as the browser issues them together; their results in order.
    The first exception is raised once all have finished."""
    greenlets = [gevent.spawn(job) for job in jobs]
    gevent.joinall(greenlets)
    for g in greenlets:
        if g.exception is not None:
            raise g.exception
    return [g.value for g in greenlets]


class Webapp11Flow:
    """The 11.x web app's phases (see the module docstring)."""

    scenario: Scenario
    http: ApiClient
    session: SessionStore
    rng: random.Random
    ws: MMWebSocket | None
    connect_websocket: Callable[[], None]
    posts_since: Callable[[str], list[str]]
    _ws_job: gevent.Greenlet | None

    # ---- login page: root.tsx loadConfigAndMe ---------------------------------------------
    def config_and_license(self) -> None:
        """``getClientConfig`` and ``getLicenseConfig``, together."""
        parallel(self._config, self._license)

    def _config(self) -> Any:
        return self.http.request("GET", "/config/client?format=old", "/config/client")

    def _license(self) -> Any:
        body = self.http.get_json("/license/client?format=old", "/license/client")
        if isinstance(body, dict):
            self.session.licensed = body.get("IsLicensed") == "true"
        return body

    # ---- after login: loadMe, then the logged-in root and the team controller ------------
    def load_me(self) -> None:
        """mattermost-redux ``loadMe``: config, license, me, preferences, teams and team members
        together; then the teams' unreads; then the server limits."""
        http, s = self.http, self.session
        _, _, me, _, teams, members = parallel(
            self._config,
            self._license,
            lambda: http.get_json("/users/me", "/users/me"),
            lambda: http.request("GET", "/users/me/preferences", "/users/me/preferences"),
            lambda: http.get_json("/users/me/teams", "/users/me/teams"),
            lambda: http.get_json("/users/me/teams/members", "/users/me/teams/members"),
        )
        if not isinstance(me, dict):
            raise LoginFailed("users/me failed")
        s.remember_me(me)
        if not teams:
            raise LoginFailed("the user is in no team")
        s.team_id = teams[0]["id"]
        s.roles = set((me.get("roles") or "system_user").split())
        for m in members if isinstance(members, list) else []:
            s.roles.update((m.get("roles") or "").split())
        self.teams_unread()
        http.request("GET", "/limits/server", "/limits/server")

    def teams_unread(self) -> None:
        """``getMyTeamUnreads`` with collapsed threads on."""
        self.http.request(
            "GET",
            "/users/me/teams/unread?include_collapsed_threads=true",
            "/users/me/teams/unread",
        )

    def load_team(self) -> None:
        """The logged-in root and the team controller, together: the WebSocket (``initialize``),
        the webapp plugins, the roles of me and my teams (``loadRolesIfNeeded``), all teams'
        channel members and channels, the team's sidebar categories; then the first channel."""
        if self.scenario.websocket.enabled:
            self._ws_job = gevent.spawn(self.connect_websocket)
        team = self.session.team_id
        parallel(
            self.webapp_plugins,
            lambda: self.load_roles(self.session.roles),
            self.load_channels_for_current_user,
            lambda: self.session.remember_categories(
                self.http.get_json(
                    f"/users/{self.session.user_id}/teams/{team}/channels/categories",
                    "/users/{user_id}/teams/{team_id}/channels/categories",
                )
            ),
        )
        if self.session.channels:
            self.view_channel(self.session.pick_channel(self.rng, default_first=True))

    def webapp_plugins(self) -> None:
        self.http.request("GET", "/plugins/webapp", "/plugins/webapp")

    def load_roles(self, roles: set[str]) -> None:
        """``loadRolesIfNeeded``: the roles not loaded yet, in one request."""
        missing = sorted(r for r in roles if r and r not in self.session.loaded_roles)
        if missing:
            self.session.loaded_roles.update(missing)
            self.http.request("POST", "/roles/names", "/roles/names", json=missing)

    def load_channels_for_current_user(self) -> None:
        """``fetchAllMyTeamsChannelsAndChannelMembersREST``: channel members in pages of 200
        (while a page is full, at most three), then every team's channels."""
        http, s = self.http, self.session
        members: list[dict[str, Any]] = []
        for page in range(MAX_MEMBER_PAGES):
            got = http.get_json(
                f"/users/{s.user_id}/channel_members?page={page}&per_page={MEMBERS_PAGE}",
                "/users/{user_id}/channel_members",
            )
            if not isinstance(got, list):
                break
            members += got
            if len(got) < MEMBERS_PAGE:
                break
        channels = http.get_json("/users/me/channels", "/users/me/channels")
        if isinstance(channels, list):
            mine = [c for c in channels if c.get("team_id") in (s.team_id, "")]
            s.remember_channels([c for c in mine if c.get("type") in ("O", "P")] or mine)
        channel_roles = {r for m in members for r in (m.get("roles") or "").split()}
        self.load_roles(channel_roles)

    # ---- a channel view ---------------------------------------------------------------------
    def view_channel_11(self, channel_id: str) -> None:
        """The channel's posts (around the last unread on a first view, else since the last
        view), then together: the authors' statuses, new authors' profiles (and their pictures),
        the channel stats and the view."""
        http, s = self.http, self.session
        before = set(s.known_users)
        if channel_id in s.viewed:
            authors = self.posts_since(channel_id)
        else:
            body = http.get_json(
                f"/users/{s.user_id}/channels/{channel_id}/posts/unread?limit_after="
                f"{POSTS_AROUND}&limit_before={POSTS_AROUND}&{POSTS_QUERY}",
                "/users/{user_id}/channels/{channel_id}/posts/unread",
            )
            authors = s.remember_posts(channel_id, body)
        jobs: list[Callable[[], Any]] = [
            lambda: http.request(
                "GET",
                f"/channels/{channel_id}/stats?exclude_files_count=true",
                "/channels/{channel_id}/stats",
            ),
            lambda: http.request(
                "POST",
                "/channels/members/me/view",
                "/channels/members/{user_id}/view",
                json={"channel_id": channel_id, "collapsed_threads_supported": True},
            ),
        ]
        parallel(*jobs, lambda: self.posts_info(authors, before))
        s.viewed[channel_id] = int(time.time() * 1000)
        s.channel_id = channel_id

    def posts_info(self, authors: list[str], before: set[str]) -> None:
        """What the browser fetches for posts it shows (ltng's ``fetchPostsInfo``): the
        authors' statuses, and profiles and pictures of those not seen before."""
        missing = [a for a in authors if a not in before and a != self.session.user_id]
        jobs: list[Callable[[], Any]] = []
        if authors:
            jobs.append(lambda: self.statuses(authors))
        if missing:
            jobs.append(lambda: self.profiles_and_pictures(missing))
        parallel(*jobs)

    def statuses(self, user_ids: list[str]) -> None:
        self.http.request(
            "POST", "/users/status/ids", "/users/status/ids", json=user_ids[:STATUS_IDS_MAX]
        )

    def profiles_and_pictures(self, user_ids: list[str]) -> None:
        """``getMissingProfilesByIds``, then the browser's ``<img>`` loads of their pictures."""
        users = json_or_none(
            self.http.request("POST", "/users/ids", "/users/ids", json=user_ids[:STATUS_IDS_MAX])
        )
        if not isinstance(users, list):
            return
        parallel(
            *[
                lambda u=u: self.http.request(
                    "GET",
                    f"/users/{u['id']}/image?_={u.get('last_picture_update') or 0}",
                    "/users/{user_id}/image",
                )
                for u in users[:IMAGES_PER_VIEW]
                if isinstance(u, dict) and u.get("id")
            ]
        )

    # ---- after a reconnect: websocket_actions.jsx reconnect() / restart() -------------------
    def reconnect_11(self, restart: bool = False) -> None:
        """``reconnect()``: channels and members, the current channel's posts since its newest,
        the statuses of channel and sidebar, the teams' unreads, the plugins, and — after a
        drop — the users modified since; then ``presence`` for channel and team. ``restart()``
        (a new connection id) adds the client config."""
        http, s = self.http, self.session
        jobs: list[Callable[[], Any]] = [
            self.load_channels_for_current_user,
            lambda: self.statuses([s.user_id, *s.known_users]),
            self.teams_unread,
            self.webapp_plugins,
        ]
        if s.channel_id:
            channel = s.channel_id
            jobs.append(lambda: self.posts_since(channel))
        if restart:
            jobs.append(self._config)
        dropped = self.ws.dropped_at if self.ws is not None else None
        if dropped and s.known_users:
            since = int(dropped * 1000)
            jobs.append(
                lambda: http.request(
                    "POST",
                    f"/users/ids?since={since}",
                    "/users/ids",
                    json=s.known_users[:STATUS_IDS_MAX],
                )
            )
        with http.page_load("reconnect"):
            parallel(*jobs)
        if self.ws is not None:
            self.ws.send_action("presence", {"channel_id": s.channel_id or ""})
            self.ws.send_action("presence", {"team_id": s.team_id or ""})
