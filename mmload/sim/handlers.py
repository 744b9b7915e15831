"""The API v4 handlers. Names (the ``handler`` label of ``mattermost_api_time``) are the Go
handler names in ``server/channels/api4``. Status codes follow the server where it and the
OpenAPI spec disagree (listed in docs/simulator.md)."""

from __future__ import annotations

import bisect
from typing import Any

from aiohttp import web

from mmload.sim import payloads as P
from mmload.sim.auth import authenticate
from mmload.sim.core import SimCore
from mmload.sim.errors import ApiError, bad_body, bad_param, forbidden
from mmload.sim.ids import is_valid_id, new_id
from mmload.sim.population import EPOCH_MS, Channel, User
from mmload.sim.request import (
    Ctx,
    Router,
    clear_login_cookies,
    int_query,
    json_body,
    json_response,
    login_props,
    raw_json,
    set_login_cookies,
)
from mmload.sim.state import Thread, now_ms

MAX_PER_PAGE = 200
MAX_POST_SIZE = 16383
MAX_LOGIN_ATTEMPTS = 10  # ServiceSettings.MaximumLoginAttempts default
INVALID_CREDENTIALS = "api.user.login.invalid_credentials_email_username"
PING = P.dumps(P.ping_body(False)).encode()
PING_WITH_STATUS = P.dumps(P.ping_body(True)).encode()


def add_routes(h: Handlers, r: Router) -> None:
    """Register the older web app's endpoints of ``h`` with the router ``r``."""
    r("GET", "/api/v4/system/ping", "getSystemPing", h.ping, session=False)
    r("GET", "/api/v4/config/client", "getClientConfig", h.client_config, session=False)
    r("GET", "/api/v4/license/client", "getClientLicense", h.client_license, session=False)
    r("POST", "/api/v4/users/login", "login", h.login, session=False, rate_limited=True)
    r("POST", "/api/v4/users/logout", "logout", h.logout, session=False)
    r("POST", "/api/v4/users/ids", "getUsersByIds", h.users_by_ids)
    r("POST", "/api/v4/users/search", "searchUsers", h.search_users)
    r("POST", "/api/v4/users/status/ids", "getUserStatusesByIds", h.statuses_by_ids)
    r("GET", "/api/v4/users/{user_id}", "getUser", h.get_user)
    r("GET", "/api/v4/users/{user_id}/status", "getUserStatus", h.get_status)
    r("GET", "/api/v4/users/{user_id}/preferences", "getPreferences", h.preferences)
    r("GET", "/api/v4/users/{user_id}/teams", "getTeamsForUser", h.teams_for_user)
    r("GET", "/api/v4/users/{user_id}/teams/members", "getTeamMembersForUser", h.team_members)
    r("GET", "/api/v4/users/{user_id}/teams/unread", "getTeamsUnreadForUser", h.teams_unread)
    r(
        "GET",
        "/api/v4/users/{user_id}/teams/{team_id}/channels",
        "getChannelsForTeamForUser",
        h.channels_for_user,
    )
    r(
        "GET",
        "/api/v4/users/{user_id}/teams/{team_id}/channels/members",
        "getChannelMembersForTeamForUser",
        h.channel_members_for_user,
    )
    r("GET", "/api/v4/users/{user_id}/teams/{team_id}/threads", "getThreadsForUser", h.threads)
    r("POST", "/api/v4/roles/names", "getRolesByNames", h.roles_by_names)
    r("POST", "/api/v4/channels/direct", "createDirectChannel", h.create_direct)
    r("POST", "/api/v4/channels/members/{user_id}/view", "viewChannel", h.view_channel)
    r("GET", "/api/v4/channels/{channel_id}", "getChannel", h.get_channel)
    r("GET", "/api/v4/channels/{channel_id}/stats", "getChannelStats", h.channel_stats)
    r(
        "GET",
        "/api/v4/channels/{channel_id}/members/{user_id}",
        "getChannelMember",
        h.channel_member,
    )
    r("GET", "/api/v4/channels/{channel_id}/posts", "getPostsForChannel", h.posts_for_channel)
    r("POST", "/api/v4/posts", "createPost", h.create_post)
    r("GET", "/api/v4/posts/{post_id}/thread", "getPostThread", h.post_thread)
    r("POST", "/api/v4/reactions", "saveReaction", h.save_reaction)
    r("POST", "/api/v4/teams/{team_id}/posts/search", "searchPostsInTeam", h.search_posts)
    r("POST", "/api/v4/teams/{team_id}/channels/search", "searchChannelsForTeam", h.search_channels)


class Handlers:
    """Handler methods, one per endpoint."""

    def __init__(self, core: SimCore):
        self.core = core
        self.state = core.state
        self.pop = core.pop
        self._user_json: dict[int, bytes] = {}
        self._profile_json: dict[int, bytes] = {}

    # -- path parameters and shared bodies ----------------------------------------------------
    def user_param(self, ctx: Ctx, *, self_only: bool = True) -> User:
        """``{user_id}`` (``me`` allowed); other users only when ``self_only`` is False."""
        raw = ctx.request.match_info["user_id"]
        if raw == "me":
            return ctx.user
        if not is_valid_id(raw):
            raise bad_param("user_id")
        if self_only and raw != ctx.user.id:
            raise forbidden()
        user = self.pop.by_id.get(raw)
        if user is None:
            raise ApiError(404, "app.user.missing_account.const", "Unable to find the user.")
        return user

    def team_param(self, ctx: Ctx, user: User) -> int:
        """``{team_id}``: the index of ``user``'s team (403 for any other team)."""
        raw = ctx.request.match_info["team_id"]
        if not is_valid_id(raw):
            raise bad_param("team_id")
        team = self.pop.teams[user.team]
        if raw != team.id:
            raise forbidden()
        return team.index

    def channel_param(self, ctx: Ctx) -> Channel:
        """``{channel_id}``: a channel the session's user may read."""
        raw = ctx.request.match_info["channel_id"]
        if not is_valid_id(raw):
            raise bad_param("channel_id")
        channel = self.state.channel(raw)
        if channel is None:
            raise ApiError(
                404, "app.channel.get.existing.app_error", "Unable to find the existing channel."
            )
        if not self.state.can_read(ctx.user, channel):
            raise forbidden()
        return channel

    def team_id_of(self, channel: Channel) -> str:
        return self.pop.teams[channel.team].id if channel.team >= 0 else ""

    def channel_json(self, channel: Channel) -> dict[str, Any]:
        cs = self.state.channel_state[channel.id]
        return P.channel_body(
            channel, self.team_id_of(channel), cs.last_post_at, cs.total_msg_count
        )

    def member_json(self, user: User, channel: Channel) -> dict[str, Any]:
        m = self.state.membership(user, channel.id)
        return P.channel_member_body(channel.id, user.id, m.last_viewed_at, m.msg_count)

    def user_bytes(self, user: User) -> bytes:
        """The session user's own JSON (login, ``users/me``), serialised once."""
        data = self._user_json.get(user.number)
        if data is None:
            data = self._user_json[user.number] = P.dumps(P.user_body(user)).encode()
        return data

    def profile_bytes(self, user: User, viewer: User) -> bytes:
        """Another user's profile as ``SanitizeProfile`` leaves it (no notify props, password
        update time or email verification), serialised once; oneself gets the full JSON."""
        if user.number == viewer.number:
            return self.user_bytes(user)
        data = self._profile_json.get(user.number)
        if data is None:
            data = self._profile_json[user.number] = P.dumps(P.profile_body(user)).encode()
        return data

    def users_bytes(self, users: list[User], viewer: User) -> bytes:
        return b"[" + b",".join(self.profile_bytes(u, viewer) for u in users) + b"]"

    # -- system -----------------------------------------------------------------------------
    async def ping(self, ctx: Ctx) -> web.Response:
        if ctx.request.query.get("get_server_status") == "true":
            return raw_json(PING_WITH_STATUS)
        return raw_json(PING)

    def _format_old(self, ctx: Ctx) -> None:
        fmt = ctx.request.query.get("format", "")
        if fmt == "":
            raise ApiError(
                501,
                "api.config.client.old_format.app_error",
                "New format for the client configuration is not supported yet. "
                "Please specify format=old in the query string.",
            )
        if fmt != "old":
            raise bad_param("format")

    async def client_config(self, ctx: Ctx) -> web.Response:
        self._format_old(ctx)
        logged_in = ctx.session is not None
        return raw_json(self.core.config_full if logged_in else self.core.config_limited)

    async def client_license(self, ctx: Ctx) -> web.Response:
        self._format_old(ctx)
        return raw_json(self.core.license)

    # -- login / logout ---------------------------------------------------------------------
    async def login(self, ctx: Ctx) -> web.Response:
        core, req = self.core, ctx.request
        props = await login_props(ctx)
        login_id = props.get("login_id") if isinstance(props.get("login_id"), str) else ""
        password = props.get("password") if isinstance(props.get("password"), str) else ""
        if password == "":
            core.metrics.logins_fail.inc()
            raise ApiError(
                400, "api.user.login.blank_pwd.app_error", "Password field must not be blank"
            )
        user = self.pop.find_login(login_id) if login_id else None
        if user is None:
            core.metrics.logins_fail.inc()
            raise ApiError(
                401,
                INVALID_CREDENTIALS,
                "Enter a valid email or username and/or password.",
                "user not found",
            )
        token = props.get("token") if isinstance(props.get("token"), str) else ""
        try:
            how = await authenticate(user, password, token, self._check_password)
        except ApiError:
            core.metrics.logins_fail.inc()
            raise
        if how == "password":
            how = "email" if login_id.strip().lower() == user.email else "username"
        ldap_only = "true" if props.get("ldap_only") == "true" else "false"
        mfa = "true" if user.mfa_secret else "false"
        core.metrics.logins_by_method.labels(how, mfa, ldap_only).inc()
        core.metrics.logins.inc()  # AuthenticateUserForLogin's count (not an OAuth sign-in's)
        return await self.start_session(user, req, always_cookies=False)

    async def start_session(
        self, user: User, req: web.Request, *, always_cookies: bool
    ) -> web.Response:
        """``DoLogin`` + ``AttachSessionCookies``: a new session (saved, last login, online),
        its token in the ``Token`` header and the session cookies — for the API login only when
        asked with ``X-Requested-With: XMLHttpRequest``, for an OAuth completion always."""
        core = self.core
        session = self.state.create_session(user)
        store = core.store
        await store.save_session(session)
        await store.update_last_login(user, session.create_at)
        await store.save_status(self.state.set_status(user, "online"))
        resp = raw_json(self.user_bytes(user))
        resp.headers["Token"] = session.token
        if always_cookies or req.headers.get("X-Requested-With") == "XMLHttpRequest":
            secure = req.secure or req.headers.get("X-Forwarded-Proto", "").lower() == "https"
            max_age = self.core.settings.session_length_web_hours * 3600
            set_login_cookies(resp, session, secure, max_age)
        return resp

    async def _check_password(self, user: User, password: str) -> bool:
        """``CheckPasswordAndAllCriteria``: the failed-attempts check (or claim, 11.9+), the
        hash (mutex + cost, plus the re-hash of a legacy hash), then the counter's update."""
        store, claim = self.core.store, self.core.profile.failed_attempts == "claim"
        if not await store.claim_attempt(user, MAX_LOGIN_ATTEMPTS, claim):
            raise ApiError(
                401,
                "api.user.check_user_login_attempts.too_many.app_error",
                "Your account is locked because of too many failed password "
                "attempts. Please reset your password.",
            )
        real = user.password if user.password is not None else self.pop.spec.password
        ok, new_hash = await self.core.passwords.verify(user.number, real, password)
        if new_hash:
            await store.update_password(user, new_hash, now_ms())
        await store.attempt_result(user, ok, claim)
        return ok

    async def logout(self, ctx: Ctx) -> web.Response:
        if ctx.session is not None:
            self.state.sessions.pop(ctx.session.token, None)
            await self.core.store.remove_session(ctx.session)
            status = self.state.set_status(ctx.session.user, "offline")
            await self.core.store.save_status(status)
        resp = json_response({"status": "OK"})
        clear_login_cookies(resp)
        return resp

    # -- users ------------------------------------------------------------------------------
    async def get_user(self, ctx: Ctx) -> web.Response:
        """``getUser`` with ``user.Etag(ShowFullName, ShowEmailAddress)``: 304 when unchanged."""
        user = self.user_param(ctx, self_only=False)
        etag = f"{self.core.profile.server_version}.{user.id}.{EPOCH_MS}.0.0.true.true.0"
        if ctx.request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        resp = raw_json(self.profile_bytes(user, ctx.user))
        resp.headers["ETag"] = etag
        return resp

    async def users_by_ids(self, ctx: Ctx) -> web.Response:
        ids = await json_body(ctx, "user_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise bad_body("user_ids")
        found = [u for u in (self.pop.by_id.get(i) for i in dict.fromkeys(ids)) if u]
        return raw_json(self.users_bytes(found, ctx.user))

    async def search_users(self, ctx: Ctx) -> web.Response:
        body = await json_body(ctx, "search")
        if not isinstance(body, dict) or not isinstance(body.get("term"), str):
            raise bad_body("term")
        term = body["term"].strip().lower().lstrip("@")
        limit = body.get("limit", 100)
        limit = min(limit, 1000) if isinstance(limit, int) and limit > 0 else 100
        team_id = body.get("team_id") or ""
        team = next((t for t in self.pop.teams if t.id == team_id), None) if team_id else None
        pool = [self.pop.user(n) for n in team.member_numbers] if team else self.pop.users
        out: list[User] = []
        if term:
            for u in pool:
                if u.username.startswith(term) or u.email.startswith(term):
                    out.append(u)
                    if len(out) >= limit:
                        break
        return raw_json(self.users_bytes(out, ctx.user))

    async def statuses_by_ids(self, ctx: Ctx) -> web.Response:
        ids = await json_body(ctx, "user_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise bad_body("user_ids")
        for uid in ids:
            if not is_valid_id(uid):
                raise bad_param("user_ids")
        return json_response([self.state.status_of(uid) for uid in dict.fromkeys(ids)])

    async def get_status(self, ctx: Ctx) -> web.Response:
        user = self.user_param(ctx, self_only=False)
        return json_response(self.state.status_of(user.id))

    async def preferences(self, ctx: Ctx) -> web.Response:
        return json_response(P.preferences_body(self.user_param(ctx)))

    # -- teams ------------------------------------------------------------------------------
    async def teams_for_user(self, ctx: Ctx) -> web.Response:
        user = self.user_param(ctx)
        return json_response([P.team_body(self.pop.teams[user.team])])

    async def team_members(self, ctx: Ctx) -> web.Response:
        user = self.user_param(ctx)
        return json_response([P.team_member_body(self.pop.teams[user.team], user)])

    async def teams_unread(self, ctx: Ctx) -> web.Response:
        user = self.user_param(ctx)
        team = self.pop.teams[user.team]
        if ctx.request.query.get("exclude_team") == team.id:
            return json_response([])
        msgs = 0
        for channel in self.pop.channels_of(user):
            m = self.state.membership(user, channel.id)
            msgs += max(self.state.channel_state[channel.id].total_msg_count - m.msg_count, 0)
        return json_response([P.team_unread_body(team.id, msgs)])

    async def roles_by_names(self, ctx: Ctx) -> web.Response:
        names = await json_body(ctx, "rolenames")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise bad_body("rolenames")
        wanted = [n for n in dict.fromkeys(names) if n in P.ROLE_NAMES]
        return json_response([P.role_body(n) for n in wanted])

    # -- channels ---------------------------------------------------------------------------
    def _my_channels(self, user: User) -> list[Channel]:
        return self.pop.channels_of(user) + self.state.directs_of(user)

    async def channels_for_user(self, ctx: Ctx) -> web.Response:
        """``getChannelsForTeamForUser`` with ``ChannelList.Etag()``: 304 when unchanged."""
        user = self.user_param(ctx)
        self.team_param(ctx, user)
        channels = [self.channel_json(c) for c in self._my_channels(user)]
        newest, newest_id = 0, "0"
        for c in channels:
            for key in ("last_post_at", "update_at"):
                if c[key] > newest:
                    newest, newest_id = c[key], c["id"]
        etag = f"{self.core.profile.server_version}.{newest_id}.{newest}.0.{len(channels)}"
        if ctx.request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        resp = json_response(channels)
        resp.headers["ETag"] = etag
        return resp

    async def channel_members_for_user(self, ctx: Ctx) -> web.Response:
        user = self.user_param(ctx)
        self.team_param(ctx, user)
        return json_response([self.member_json(user, c) for c in self._my_channels(user)])

    async def get_channel(self, ctx: Ctx) -> web.Response:
        return json_response(self.channel_json(self.channel_param(ctx)))

    async def channel_stats(self, ctx: Ctx) -> web.Response:
        channel = self.channel_param(ctx)
        return json_response(P.channel_stats_body(channel.id, len(channel.members)))

    async def channel_member(self, ctx: Ctx) -> web.Response:
        channel = self.channel_param(ctx)
        user = self.user_param(ctx, self_only=False)
        if not self.pop.is_member(user, channel):
            raise ApiError(
                404,
                "app.channel.get_member.missing.app_error",
                "No channel member found for that user ID and channel ID.",
            )
        return json_response(self.member_json(user, channel))

    async def view_channel(self, ctx: Ctx) -> web.Response:
        user = self.user_param(ctx)
        body = await json_body(ctx, "channel_view")
        if not isinstance(body, dict) or not isinstance(body.get("channel_id", ""), str):
            raise bad_body("channel_view")
        times: dict[str, int] = {}
        now = now_ms()
        for key in ("channel_id", "prev_channel_id"):
            cid = body.get(key) or ""
            if not cid:
                continue
            if not is_valid_id(cid):
                raise bad_body(key)
            channel = self.state.channel(cid)
            if channel is None or not self.pop.is_member(user, channel):
                continue
            m = self.state.membership(user, cid)
            m.last_viewed_at = now
            m.msg_count = self.state.channel_state[cid].total_msg_count
            times[cid] = now
        return json_response(P.view_channel_body(times))

    async def create_direct(self, ctx: Ctx) -> web.Response:
        ids = await json_body(ctx, "user_ids")
        if (
            not isinstance(ids, list)
            or len(ids) != 2
            or not all(isinstance(i, str) and is_valid_id(i) for i in ids)
        ):
            raise bad_body("user_ids")
        if ctx.user.id not in ids:
            raise forbidden()
        users = [self.pop.by_id.get(i) for i in ids]
        if users[0] is None or users[1] is None:
            raise ApiError(
                400,
                "api.channel.create_direct_channel.invalid_user.app_error",
                "Invalid user ID for direct channel creation.",
            )
        channel = self.state.direct_channel(users[0], users[1])
        return json_response(self.channel_json(channel), status=201)

    async def search_channels(self, ctx: Ctx) -> web.Response:
        team = self._team_of_path(ctx)
        body = await json_body(ctx, "channel_search")
        if not isinstance(body, dict) or not isinstance(body.get("term"), str):
            raise bad_body("channel_search")
        term = body["term"].strip().lower()
        found = [
            c
            for c in self.pop.teams[team].channels
            if term in c.name or term in c.display_name.lower()
        ][:50]
        return json_response([self.channel_json(c) for c in found])

    def _team_of_path(self, ctx: Ctx) -> int:
        return self.team_param(ctx, ctx.user)

    # -- posts ------------------------------------------------------------------------------
    def _post_list(
        self, ids: list[str], *, prev_id: str = "", next_id: str = "", has_next: bool = False
    ) -> dict[str, Any]:
        return P.post_list_body(
            ids, self.state.posts, prev_id=prev_id, next_id=next_id, has_next=has_next
        )

    async def posts_for_channel(self, ctx: Ctx) -> web.Response:
        channel = self.channel_param(ctx)
        q = ctx.request.query
        page = int_query(ctx, "page", 0)
        per_page = int_query(ctx, "per_page", 60, high=MAX_PER_PAGE)
        ids = list(self.state.channel_state[channel.id].post_ids)  # oldest first
        posts = self.state.posts
        since = q.get("since")
        if since:
            try:
                since_ms = int(since)
            except ValueError:
                raise bad_param("since") from None
            newer = [i for i in reversed(ids) if posts[i]["update_at"] > since_ms]
            return json_response(self._post_list(newer))
        for key in ("before", "after"):
            if q.get(key) and not is_valid_id(q[key]):
                raise bad_param(key)
        latest = max((posts[i]["update_at"] for i in ids), default=0)
        etag = f"{self.core.profile.server_version}.{latest}"  # GetPostsEtag
        if ctx.request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        if q.get("before"):
            end = ids.index(q["before"]) if q["before"] in ids else 0
            window = ids[:end]
        elif q.get("after"):
            start = ids.index(q["after"]) + 1 if q["after"] in ids else len(ids)
            window = ids[start:]
        else:
            window = ids
        newest_first = window[::-1]
        lo = page * per_page
        chunk = newest_first[lo : lo + per_page]
        older = newest_first[lo + per_page] if lo + per_page < len(newest_first) else ""
        newer = newest_first[lo - 1] if 0 < lo <= len(newest_first) else ""
        resp = json_response(
            self._post_list(chunk, prev_id=older, next_id=newer, has_next=bool(older))
        )
        resp.headers["ETag"] = etag
        return resp

    async def create_post(self, ctx: Ctx) -> web.Response:
        body = await json_body(ctx, "post")
        if not isinstance(body, dict):
            raise bad_body("post")
        cid, message = body.get("channel_id"), body.get("message", "")
        root_id = body.get("root_id") or ""
        if not isinstance(cid, str) or not is_valid_id(cid):
            raise bad_body("channel_id")
        if not isinstance(message, str) or not isinstance(root_id, str):
            raise bad_body("post")
        if len(message) > MAX_POST_SIZE:
            raise ApiError(
                400,
                "model.post.is_valid.message_length.app_error",
                "Message property is longer than the maximum allowed characters.",
            )
        channel = self.state.channel(cid)
        if channel is None or not self.state.can_read(ctx.user, channel):
            raise forbidden()
        if root_id and (
            root_id not in self.state.posts or self.state.posts[root_id]["channel_id"] != cid
        ):
            raise ApiError(
                400, "api.post.create_post.root_id.app_error", "Invalid RootId parameter."
            )
        props = body.get("props") if isinstance(body.get("props"), dict) else {}
        pending = (
            body.get("pending_post_id") if isinstance(body.get("pending_post_id"), str) else ""
        )
        post = P.post_body(
            new_id(),
            now_ms(),
            ctx.user.id,
            cid,
            message,
            root_id=root_id,
            props=props,
            pending_post_id=pending,
        )
        self.state.add_post(post)
        await self._broadcast_posted(channel, ctx.user, post)
        return json_response(post, status=201)

    async def _broadcast_posted(self, channel: Channel, author: User, post: dict[str, Any]) -> None:
        data = P.posted_event_data(channel, self.team_id_of(channel), author, post)
        await self.core.hub.to_channel(channel, "posted", data, author=author)

    async def post_thread(self, ctx: Ctx) -> web.Response:
        post_id = ctx.request.match_info["post_id"]
        if not is_valid_id(post_id):
            raise bad_param("post_id")
        post = self.state.posts.get(post_id)
        if post is None:
            raise ApiError(404, "app.post.get.app_error", "Unable to get the post.")
        channel = self.state.channel(post["channel_id"])
        if channel is None or not self.state.can_read(ctx.user, channel):
            raise forbidden()
        root_id = post["root_id"] or post["id"]
        ids = [
            i
            for i in self.state.channel_state[channel.id].post_ids
            if i == root_id or self.state.posts[i]["root_id"] == root_id
        ]
        return json_response(self._post_list(ids[::-1]))

    async def save_reaction(self, ctx: Ctx) -> web.Response:
        body = await json_body(ctx, "reaction")
        if not isinstance(body, dict):
            raise bad_body("reaction")
        post_id, emoji = body.get("post_id"), body.get("emoji_name")
        if not isinstance(post_id, str) or not is_valid_id(post_id):
            raise bad_body("post_id")
        if not isinstance(emoji, str) or not emoji or len(emoji) > 64:
            raise bad_body("emoji_name")
        if body.get("user_id") != ctx.user.id:
            raise forbidden()
        post = self.state.posts.get(post_id)
        if post is None:
            raise ApiError(404, "app.post.get.app_error", "Unable to get the post.")
        channel = self.state.channel(post["channel_id"])
        if channel is None or not self.state.can_read(ctx.user, channel):
            raise forbidden()
        reaction = P.reaction_body(ctx.user.id, post_id, emoji, channel.id, now_ms())
        self.state.reactions.setdefault(post_id, []).append(reaction)
        post["has_reactions"] = True
        await self.core.hub.to_channel(channel, "reaction_added", {"reaction": P.dumps(reaction)})
        return json_response(reaction)

    async def search_posts(self, ctx: Ctx) -> web.Response:
        team = self._team_of_path(ctx)
        body = await json_body(ctx, "search")
        if not isinstance(body, dict) or not isinstance(body.get("terms"), str):
            raise bad_body("terms")
        words = [w for w in body["terms"].lower().split() if ":" not in w]
        per_page = body.get("per_page", 60)
        per_page = per_page if isinstance(per_page, int) and 0 < per_page <= 200 else 60
        found: list[tuple[int, str]] = []
        posts = self.state.posts
        for channel in self.pop.teams[team].channels:
            for pid in self.state.channel_state[channel.id].post_ids:
                text = posts[pid]["message"].lower()
                if words and all(w in text for w in words):
                    bisect.insort(found, (-posts[pid]["create_at"], pid))
        ids = [pid for _, pid in found[:per_page]]
        return json_response(P.search_results_body(ids, posts, words))

    async def threads(self, ctx: Ctx) -> web.Response:
        user = self.user_param(ctx)
        self.team_param(ctx, user)
        per_page = int_query(ctx, "per_page", 25, high=MAX_PER_PAGE)
        page = int_query(ctx, "page", 0)
        followed = list(reversed(self.state.user_threads.get(user.id, {})))
        live = [
            t
            for t in (self.state.threads.get(i) for i in followed)
            if t and t.root_id in self.state.posts
        ]
        chunk = live[page * per_page : (page + 1) * per_page]
        totals_only = ctx.request.query.get("totalsOnly") == "true"
        threads = [] if totals_only else [self._thread_json(user, t) for t in chunk]
        return json_response(P.threads_body(len(live), threads))

    def _thread_json(self, user: User, t: Thread) -> dict[str, Any]:
        participants = [
            P.profile_body(self.pop.by_id[uid]) for uid in t.participants if uid in self.pop.by_id
        ][:10]
        root = self.state.posts[t.root_id]
        return P.thread_body(root, t.reply_count, t.last_reply_at, participants)
