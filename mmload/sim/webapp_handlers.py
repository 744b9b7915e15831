"""The endpoints the 11.x web app (and ltng's action mix) adds to the older initial load: all teams'
channels and members, sidebar categories (created on first load), posts around the last unread,
webapp plugins, server limits, profile images, autocomplete, drafts, thread read state,
scheduled posts, channel bookmarks, all-teams search, post edits, the client metrics report.

Handler names are the Go handler names of ``server/channels/api4`` (the ``handler`` label of
``mattermost_api_time``). ETags and 304 where the server sends them (``HandleEtag``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mmload.sim import handlers, openid
from mmload.sim import payloads as P
from mmload.sim.core import SimCore
from mmload.sim.errors import ApiError, bad_body, bad_param, forbidden
from mmload.sim.handlers import MAX_PER_PAGE, MAX_POST_SIZE, Handlers
from mmload.sim.ids import is_valid_id, new_id
from mmload.sim.population import Channel, User
from mmload.sim.request import Ctx, Router, int_query, json_body, json_response
from mmload.sim.state import (
    MAX_BOOKMARKS_PER_CHANNEL,
    MAX_DRAFTS_PER_USER,
    MAX_PREFERENCES_PER_USER,
    MAX_SCHEDULED_PER_USER,
    now_ms,
)

U = "/api/v4/users/{user_id}"
UT = U + "/teams/{team_id}"
THREAD = UT + "/threads/{thread_id}"
BOOKMARKS = "/api/v4/channels/{channel_id}/bookmarks"


def add_routes(core: SimCore, r: Router) -> None:
    """Register every simulated endpoint: the 11.x web app's first (fixed paths such as
    ``/users/autocomplete`` before ``/users/{user_id}``), then the older ones."""
    h = WebappHandlers(core)
    r("GET", "/api/v4/users/autocomplete", "autocompleteUsers", h.autocomplete_users)
    r("POST", "/api/v4/users/usernames", "getUsersByNames", h.users_by_names)
    r("GET", "/api/v4/users", "getUsers", h.get_users)
    r("GET", U + "/channels", "getChannelsForUser", h.all_channels_for_user)
    r("GET", U + "/channel_members", "getChannelMembersForUser", h.all_channel_members_for_user)
    cats = UT + "/channels/categories"
    r("GET", cats, "getCategoriesForTeamForUser", h.categories)
    r("PUT", cats, "updateCategoriesForTeamForUser", h.update_categories)
    r("GET", cats + "/order", "getCategoryOrderForTeamForUser", h.category_order)
    r(
        "GET",
        U + "/channels/{channel_id}/posts/unread",
        "getPostsForChannelAroundLastUnread",
        h.posts_around_last_unread,
    )
    r("GET", U + "/channels/{channel_id}/unread", "getChannelUnread", h.channel_unread)
    r("GET", "/api/v4/plugins/webapp", "getWebappPlugins", h.webapp_plugins, session=False)
    r("GET", "/api/v4/limits/server", "getServerLimits", h.server_limits)
    r("GET", U + "/image", "getProfileImage", h.profile_image, trust_requester=True)
    r(
        "GET",
        U + "/image/default",
        "getDefaultProfileImage",
        h.default_profile_image,
        trust_requester=True,
    )
    r("PUT", U + "/preferences", "updatePreferences", h.update_preferences)
    r("PUT", U + "/status/custom", "updateUserCustomStatus", h.update_custom_status)
    r("DELETE", U + "/status/custom", "removeUserCustomStatus", h.remove_custom_status)
    r("POST", U + "/typing", "publishUserTyping", h.publish_typing)
    r("GET", UT + "/drafts", "getDrafts", h.get_drafts)
    r("POST", "/api/v4/drafts", "upsertDraft", h.upsert_draft)
    r("DELETE", U + "/channels/{channel_id}/drafts", "deleteDraft", h.delete_draft)
    r("DELETE", U + "/channels/{channel_id}/drafts/{thread_id}", "deleteDraft", h.delete_draft)
    r("PUT", UT + "/threads/read", "updateReadStateAllThreadsByUser", h.read_all_threads)
    r("GET", THREAD, "getThreadForUser", h.get_thread)
    r("PUT", THREAD + "/read/{timestamp}", "updateReadStateThreadByUser", h.read_thread)
    r("PUT", THREAD + "/following", "followThreadByUser", h.follow_thread)
    r("DELETE", THREAD + "/following", "unfollowThreadByUser", h.unfollow_thread)
    r("POST", "/api/v4/posts/schedule", "createSchedulePost", h.create_scheduled)
    r("PUT", "/api/v4/posts/schedule/{scheduled_post_id}", "updateScheduledPost", h.update_sched)
    r("DELETE", "/api/v4/posts/schedule/{scheduled_post_id}", "deleteScheduledPost", h.del_sched)
    r(
        "GET",
        "/api/v4/posts/scheduled/team/{team_id}",
        "getTeamScheduledPosts",
        h.team_scheduled,
    )
    r("GET", BOOKMARKS, "listChannelBookmarksForChannel", h.list_bookmarks)
    r("POST", BOOKMARKS, "createChannelBookmark", h.create_bookmark)
    r("PATCH", BOOKMARKS + "/{bookmark_id}", "updateChannelBookmark", h.update_bookmark)
    r("DELETE", BOOKMARKS + "/{bookmark_id}", "deleteChannelBookmark", h.delete_bookmark)
    r(
        "POST",
        BOOKMARKS + "/{bookmark_id}/sort_order",
        "updateChannelBookmarkSortOrder",
        h.sort_bookmark,
    )
    r("POST", "/api/v4/posts/search", "searchPostsInAllTeams", h.search_all_teams)
    r("POST", "/api/v4/posts/ids", "getPostsByIds", h.posts_by_ids)
    r("GET", "/api/v4/posts/{post_id}", "getPost", h.get_post)
    r("PUT", "/api/v4/posts/{post_id}/patch", "patchPost", h.patch_post)
    r("DELETE", "/api/v4/posts/{post_id}", "deletePost", h.delete_post)
    r("POST", "/api/v4/client_perf", "submitPerformanceReport", h.perf, trust_requester=True)
    r("GET", "/api/v4/teams/{team_id}/stats", "getTeamStats", h.team_stats)
    r("GET", "/api/v4/teams/{team_id}/members/{user_id}", "getTeamMember", h.team_member)
    r("GET", "/api/v4/teams/{team_id}/channels", "getPublicChannelsForTeam", h.public_channels)
    r(
        "GET",
        "/api/v4/teams/{team_id}/channels/autocomplete",
        "autocompleteChannelsForTeam",
        h.autocomplete_channels,
    )
    r(
        "GET",
        "/api/v4/teams/{team_id}/channels/search_autocomplete",
        "autocompleteChannelsForTeamForSearch",
        h.autocomplete_channels,
    )
    r("GET", "/api/v4/channels/{channel_id}/members", "getChannelMembers", h.channel_members)
    r("POST", "/api/v4/channels/group/search", "searchGroupChannels", h.search_group_channels)
    handlers.add_routes(h, r)
    openid.add_routes(h, r)


def etag_response(ctx: Ctx, etag: str, body: Any) -> web.Response:
    """``HandleEtag``: 304 with the ETag when ``If-None-Match`` matches, else the body + ETag."""
    if ctx.request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    resp = json_response(body)
    resp.headers["ETag"] = etag
    return resp


class WebappHandlers(Handlers):
    """Handler methods of the newer endpoints (sharing the older ones' helpers)."""

    # -- users ------------------------------------------------------------------------------
    def _team_of_query(self, ctx: Ctx, name: str) -> int | None:
        raw = ctx.request.query.get(name, "")
        if not raw:
            return None
        team = next((t for t in self.pop.teams if t.id == raw), None)
        if team is None or team.index != ctx.user.team:
            raise forbidden()
        return team.index

    def _channel_of_query(self, ctx: Ctx, name: str) -> Channel | None:
        raw = ctx.request.query.get(name, "")
        if not raw:
            return None
        channel = self.state.channel(raw) if is_valid_id(raw) else None
        if channel is None:
            raise bad_param(name)
        if not self.state.can_read(ctx.user, channel):
            raise forbidden()
        return channel

    def _candidates(self, ctx: Ctx) -> list[User]:
        team = self._team_of_query(ctx, "in_team")
        if team is None:
            return self.pop.users
        return [self.pop.user(n) for n in self.pop.teams[team].member_numbers]

    async def get_users(self, ctx: Ctx) -> web.Response:
        page = int_query(ctx, "page", 0)
        per_page = int_query(ctx, "per_page", 60, high=MAX_PER_PAGE)
        in_channel = self._channel_of_query(ctx, "in_channel")
        not_in = self._channel_of_query(ctx, "not_in_channel")
        users = self._candidates(ctx)
        if in_channel is not None:
            users = [self.pop.user(n) for n in in_channel.members]
        if not_in is not None:
            users = [u for u in users if not self.pop.is_member(u, not_in)]
        chunk = users[page * per_page : (page + 1) * per_page]
        return web.Response(body=self.users_bytes(chunk, ctx.user), content_type="application/json")

    async def users_by_names(self, ctx: Ctx) -> web.Response:
        names = await json_body(ctx, "usernames")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise bad_body("usernames")
        found = [u for u in (self.pop.find_login(n) for n in dict.fromkeys(names)) if u]
        found = [u for u in found if u.username in names]
        return web.Response(body=self.users_bytes(found, ctx.user), content_type="application/json")

    async def autocomplete_users(self, ctx: Ctx) -> web.Response:
        q = ctx.request.query
        name = q.get("name", "").strip().lower().lstrip("@")
        limit = int_query(ctx, "limit", 100, low=1, high=1000)
        channel = self._channel_of_query(ctx, "in_channel")
        users = self._candidates(ctx)
        matched = [u for u in users if u.username.startswith(name)] if name else users
        if channel is None:
            body = {"users": [P.profile_body(u) for u in matched[:limit]]}
            return json_response(body)
        inside = [u for u in matched if self.pop.is_member(u, channel)][:limit]
        outside = [u for u in matched if not self.pop.is_member(u, channel)][:limit]
        return json_response(
            {
                "users": [P.profile_body(u) for u in inside],
                "out_of_channel": [P.profile_body(u) for u in outside],
            }
        )

    async def profile_image(self, ctx: Ctx) -> web.StreamResponse:
        """``getProfileImage``: ETag = ``LastPictureUpdate`` (0: never uploaded)."""
        self.user_param(ctx, self_only=False)
        etag = "0"
        if ctx.request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return self._png_response(etag)

    async def default_profile_image(self, ctx: Ctx) -> web.StreamResponse:
        self.user_param(ctx, self_only=False)
        return self._png_response(None)

    @staticmethod
    def _png_response(etag: str | None) -> web.Response:
        headers = {"Cache-Control": "max-age=86400, private"}
        if etag is not None:
            headers["ETag"] = etag
        return web.Response(body=P.PROFILE_IMAGE, content_type="image/png", headers=headers)

    async def update_preferences(self, ctx: Ctx) -> web.Response:
        user = self.user_param(ctx)
        prefs = await json_body(ctx, "preferences")
        if not isinstance(prefs, list) or not prefs or len(prefs) > 100:
            raise bad_body("preferences")
        table = self.state.preferences_of(user)
        for pref in prefs:
            if not isinstance(pref, dict) or pref.get("user_id") != user.id:
                raise forbidden()
            category, name = pref.get("category"), pref.get("name")
            value = pref.get("value", "")
            if not all(isinstance(v, str) for v in (category, name, value)):
                raise bad_body("preferences")
            body = {"user_id": user.id, "category": category, "name": name, "value": value}
            self.state.bounded_put(table, (category, name), body, MAX_PREFERENCES_PER_USER)
        return json_response(P.status_ok())

    async def update_custom_status(self, ctx: Ctx) -> web.Response:
        user = self.user_param(ctx)
        status = await json_body(ctx, "custom_status")
        if not isinstance(status, dict):
            raise bad_body("custom_status")
        text = status.get("text", "")
        emoji = status.get("emoji", "")
        if not isinstance(text, str) or not isinstance(emoji, str) or len(text) > 100:
            raise bad_body("custom_status")
        self.state.custom_status[user.number] = {"emoji": emoji, "text": text}
        return json_response(P.status_ok())

    async def remove_custom_status(self, ctx: Ctx) -> web.Response:
        self.state.custom_status.pop(self.user_param(ctx).number, None)
        return json_response(P.status_ok())

    async def publish_typing(self, ctx: Ctx) -> web.Response:
        user = self.user_param(ctx)
        body = await json_body(ctx, "typing")
        if not isinstance(body, dict) or not isinstance(body.get("channel_id"), str):
            raise bad_body("typing")
        channel = self.state.channel(body["channel_id"])
        if channel is None or not self.state.can_read(user, channel):
            raise forbidden()
        parent = body.get("parent_id") if isinstance(body.get("parent_id"), str) else ""
        await self.core.hub.typing(channel, user, parent)
        return json_response(P.status_ok())

    # -- all teams' channels and members ----------------------------------------------------
    def _all_channels(self, user: User) -> list[Channel]:
        return self.pop.channels_of(user) + self.state.directs_of(user)

    async def all_channels_for_user(self, ctx: Ctx) -> web.Response:
        """``getChannelsForUser``: every team's channels plus DMs, one array (no ETag)."""
        user = self.user_param(ctx)
        if int_query(ctx, "last_delete_at", 0) < 0:
            raise bad_param("last_delete_at")
        return json_response([self.channel_json(c) for c in self._all_channels(user)])

    async def all_channel_members_for_user(self, ctx: Ctx) -> web.Response:
        """``getChannelMembersForUser``: memberships with team data, paged (60, max 200)."""
        user = self.user_param(ctx)
        page = int_query(ctx, "page", 0)
        per_page = int_query(ctx, "per_page", 60, high=MAX_PER_PAGE)
        chunk = self._all_channels(user)[page * per_page : (page + 1) * per_page]
        body = []
        for channel in chunk:
            team = self.pop.teams[channel.team] if channel.team >= 0 else None
            body.append(P.channel_member_with_team_body(self.member_json(user, channel), team))
        return json_response(body)

    # -- sidebar categories -----------------------------------------------------------------
    async def _categories(self, ctx: Ctx) -> tuple[User, list[dict[str, Any]]]:
        user = self.user_param(ctx)
        team = self.pop.teams[self.team_param(ctx, user)]
        rows, created = await self.core.store.categories(
            user, team.id, P.initial_sidebar_categories(user.id, team.id)
        )
        if created:
            self.core.metrics.categories_created.inc()
        by_kind = {
            "favorites": [],
            "channels": [c.id for c in self.pop.channels_of(user)],
            "direct_messages": [c.id for c in self.state.directs_of(user)],
        }
        cats = [{**row, "channel_ids": by_kind.get(row["type"], [])} for row in rows]
        return user, cats

    async def categories(self, ctx: Ctx) -> web.Response:
        """``getCategoriesForTeamForUser``: created (database writes) on the first load."""
        _user, cats = await self._categories(ctx)
        return json_response(P.ordered_categories_body(cats))

    async def category_order(self, ctx: Ctx) -> web.Response:
        _user, cats = await self._categories(ctx)
        return json_response([c["id"] for c in cats])

    async def update_categories(self, ctx: Ctx) -> web.Response:
        _user, cats = await self._categories(ctx)
        body = await json_body(ctx, "categories")
        if not isinstance(body, list) or not all(isinstance(c, dict) for c in body):
            raise bad_body("categories")
        known = {c["id"]: c for c in cats}
        out = []
        for change in body:
            current = known.get(change.get("id"))
            if current is None:
                raise bad_body("categories")
            for key in ("muted", "collapsed"):
                if isinstance(change.get(key), bool):
                    current[key] = change[key]
            if isinstance(change.get("sorting"), str):
                current["sorting"] = change["sorting"]
            out.append(current)
        return json_response(out)

    # -- posts around the last unread, unread counts ----------------------------------------
    def _posts_etag(self, channel: Channel) -> str:
        """``GetPostsEtag``: the version and the channel's newest post change."""
        ids = self.state.channel_state[channel.id].post_ids
        latest = max((self.state.posts[i]["update_at"] for i in ids), default=0)
        return f"{self.core.profile.server_version}.{latest}"

    async def posts_around_last_unread(self, ctx: Ctx) -> web.Response:
        user = self.user_param(ctx)
        channel = self.channel_param(ctx)
        before = int_query(ctx, "limit_before", 60, high=MAX_PER_PAGE)
        after = int_query(ctx, "limit_after", 60, high=MAX_PER_PAGE)
        if after == 0:
            raise bad_param("limit_after")
        ids = list(self.state.channel_state[channel.id].post_ids)  # oldest first
        viewed = self.state.membership(user, channel.id).last_viewed_at
        posts = self.state.posts
        first_unread = next(
            (i for i, pid in enumerate(ids) if posts[pid]["create_at"] > viewed), None
        )
        if first_unread is None:  # nothing unread: the newest page, with the posts' ETag
            newest = ids[::-1][:before]
            older = ids[::-1][before] if len(ids) > before else ""
            body = self._post_list(newest, prev_id=older)
            return etag_response(ctx, self._posts_etag(channel), body)
        lo = max(first_unread - before, 0)
        window = ids[lo : first_unread + after]
        prev_id = ids[lo - 1] if lo > 0 else ""
        end = first_unread + after
        next_id = ids[end] if end < len(ids) else ""
        return json_response(
            self._post_list(window[::-1], prev_id=prev_id, next_id=next_id, has_next=bool(next_id))
        )

    async def channel_unread(self, ctx: Ctx) -> web.Response:
        user = self.user_param(ctx)
        channel = self.channel_param(ctx)
        m = self.state.membership(user, channel.id)
        msgs = max(self.state.channel_state[channel.id].total_msg_count - m.msg_count, 0)
        return json_response(P.channel_unread_body(self.team_id_of(channel), channel.id, msgs))

    # -- plugins, limits, client metrics ----------------------------------------------------
    async def webapp_plugins(self, ctx: Ctx) -> web.Response:
        plugins = self.core.settings.webapp_plugins
        return json_response([P.webapp_plugin_body(p.id, p.version) for p in plugins])

    async def server_limits(self, ctx: Ctx) -> web.Response:
        return json_response(P.server_limits_body())

    async def perf(self, ctx: Ctx) -> web.Response:
        """``submitPerformanceReport``: version 0.x (x ≤ 1), ending within the last 5 minutes."""
        report = await json_body(ctx, "submitPerformanceReport")
        if not isinstance(report, dict):
            raise bad_body("submitPerformanceReport")
        version, end = report.get("version"), report.get("end")
        major, _, rest = version.partition(".") if isinstance(version, str) else ("", "", "")
        minor = rest.partition(".")[0]
        if major != "0" or not minor.isdigit() or int(minor) > 1:
            raise bad_body("submitPerformanceReport")
        if not isinstance(end, int | float) or end < now_ms() - 300_000:
            raise bad_body("submitPerformanceReport")
        for key in ("counters", "histograms"):
            if not isinstance(report.get(key, []), list):
                raise bad_body("submitPerformanceReport")
        return json_response(P.status_ok())

    # -- drafts -----------------------------------------------------------------------------
    async def get_drafts(self, ctx: Ctx) -> web.Response:
        user = self.user_param(ctx)
        team = self.pop.teams[self.team_param(ctx, user)]
        drafts = [
            d
            for d in reversed(self.state.drafts_of(user).values())
            if (c := self.state.channel(d["channel_id"])) is not None
            and (c.team == team.index or c.team < 0)
        ]
        return json_response(drafts)

    async def upsert_draft(self, ctx: Ctx) -> web.Response:
        body = await json_body(ctx, "draft")
        if not isinstance(body, dict):
            raise bad_body("draft")
        cid, root = body.get("channel_id"), body.get("root_id") or ""
        message = body.get("message", "")
        if not isinstance(cid, str) or not is_valid_id(cid):
            raise bad_body("channel_id")
        if not isinstance(root, str) or not isinstance(message, str):
            raise bad_body("draft")
        if len(message) > MAX_POST_SIZE:
            raise ApiError(
                400,
                "model.draft.is_valid.message_length.app_error",
                "Invalid Message property length.",
            )
        channel = self.state.channel(cid)
        if channel is None or not self.state.can_read(ctx.user, channel):
            raise forbidden()
        props = body.get("props") if isinstance(body.get("props"), dict) else {}
        table = self.state.drafts_of(ctx.user)
        old = table.get((cid, root))
        now = now_ms()
        create_at = old["create_at"] if old else now
        draft = P.draft_body(ctx.user.id, cid, root, message, props, create_at, now)
        self.state.bounded_put(table, (cid, root), draft, MAX_DRAFTS_PER_USER)
        event = "draft_updated" if old else "draft_created"
        await self.core.hub.to_user(ctx.user, event, {"draft": P.dumps(draft)})
        return json_response(draft, status=201)

    async def delete_draft(self, ctx: Ctx) -> web.Response:
        user = self.user_param(ctx)
        cid = ctx.request.match_info["channel_id"]
        if not is_valid_id(cid):
            raise bad_param("channel_id")
        root = ctx.request.match_info.get("thread_id", "")
        draft = self.state.drafts_of(user).pop((cid, root), None)
        if draft is not None:
            await self.core.hub.to_user(user, "draft_deleted", {"draft": P.dumps(draft)})
        return json_response(P.status_ok())  # a missing draft is OK too, as on the server

    # -- threads ----------------------------------------------------------------------------
    def _thread_param(self, ctx: Ctx) -> tuple[User, Any]:
        user = self.user_param(ctx)
        self.team_param(ctx, user)
        root_id = ctx.request.match_info["thread_id"]
        if not is_valid_id(root_id):
            raise bad_param("thread_id")
        thread = self.state.threads.get(root_id)
        root = self.state.posts.get(root_id)
        if thread is None or root is None:
            raise ApiError(404, "app.thread.get.app_error", "Unable to get the thread.")
        channel = self.state.channel(root["channel_id"])
        if channel is None or not self.state.can_read(user, channel):
            raise forbidden()
        return user, thread

    async def get_thread(self, ctx: Ctx) -> web.Response:
        user, thread = self._thread_param(ctx)
        return json_response(self._thread_json(user, thread))

    async def read_thread(self, ctx: Ctx) -> web.Response:
        """``updateReadStateThreadByUser``: the thread's last view, back as the thread."""
        user, thread = self._thread_param(ctx)
        raw = ctx.request.match_info["timestamp"]
        if not raw.isdigit():
            raise bad_param("timestamp")
        self.state.thread_views[(user.number, thread.root_id)] = int(raw)
        return json_response(self._thread_json(user, thread))

    async def follow_thread(self, ctx: Ctx) -> web.Response:
        user, thread = self._thread_param(ctx)
        followed = self.state.user_threads.setdefault(user.id, {})
        followed[thread.root_id] = None  # type: ignore[index]
        return json_response(P.status_ok())

    async def unfollow_thread(self, ctx: Ctx) -> web.Response:
        user, thread = self._thread_param(ctx)
        self.state.user_threads.get(user.id, {}).pop(thread.root_id, None)
        return json_response(P.status_ok())

    async def read_all_threads(self, ctx: Ctx) -> web.Response:
        user = self.user_param(ctx)
        self.team_param(ctx, user)
        now = now_ms()
        for root_id in list(self.state.user_threads.get(user.id, {})):
            self.state.thread_views[(user.number, root_id)] = now
        return json_response(P.status_ok())

    def _thread_json(self, user: User, t: Any) -> dict[str, Any]:
        body = super()._thread_json(user, t)
        viewed = self.state.thread_views.get((user.number, t.root_id), 0)
        body["last_viewed_at"] = viewed
        return body

    # -- scheduled posts --------------------------------------------------------------------
    async def _scheduled_body(self, ctx: Ctx, what: str) -> tuple[dict[str, Any], Channel]:
        body = await json_body(ctx, what)
        if not isinstance(body, dict):
            raise bad_body(what)
        cid, message = body.get("channel_id"), body.get("message", "")
        at = body.get("scheduled_at")
        if not isinstance(cid, str) or not is_valid_id(cid) or not isinstance(message, str):
            raise bad_body(what)
        if not isinstance(at, int) or at <= now_ms():
            raise ApiError(
                400,
                "app.save_scheduled_post.invalid_time.app_error",
                "Scheduled time must be in the future.",
            )
        channel = self.state.channel(cid)
        if channel is None or not self.state.can_read(ctx.user, channel):
            raise forbidden()
        return body, channel

    async def create_scheduled(self, ctx: Ctx) -> web.Response:
        body, channel = await self._scheduled_body(ctx, "schedule_post")
        table = self.state.scheduled_of(ctx.user)
        now = now_ms()
        root = body.get("root_id") if isinstance(body.get("root_id"), str) else ""
        props = body.get("props") if isinstance(body.get("props"), dict) else {}
        draft = P.draft_body(ctx.user.id, channel.id, root, body["message"], props, now, now)
        post = P.scheduled_post_body(new_id(), draft, body["scheduled_at"])
        self.state.bounded_put(table, post["id"], post, MAX_SCHEDULED_PER_USER)
        return json_response(post, status=201)

    def _own_scheduled(self, ctx: Ctx) -> dict[str, Any]:
        sid = ctx.request.match_info["scheduled_post_id"]
        post = self.state.scheduled_of(ctx.user).get(sid) if is_valid_id(sid) else None
        if post is None:
            raise ApiError(
                404, "app.scheduled_post.get.app_error", "Unable to get the scheduled post."
            )
        return post

    async def update_sched(self, ctx: Ctx) -> web.Response:
        post = self._own_scheduled(ctx)
        body, _channel = await self._scheduled_body(ctx, "schedule_post")
        post.update(message=body["message"], scheduled_at=body["scheduled_at"])
        post["update_at"] = now_ms()
        return json_response(post)

    async def del_sched(self, ctx: Ctx) -> web.Response:
        post = self._own_scheduled(ctx)
        self.state.scheduled_of(ctx.user).pop(post["id"], None)
        return json_response(post)

    async def team_scheduled(self, ctx: Ctx) -> web.Response:
        """``getTeamScheduledPosts``: ``{team_id: [...]}`` (+ ``directChannels`` on request)."""
        team = self.pop.teams[self.team_param(ctx, ctx.user)]
        mine = list(self.state.scheduled_of(ctx.user).values())
        in_team = [p for p in mine if self.state.channel(p["channel_id"]).team == team.index]
        body: dict[str, list[dict[str, Any]]] = {team.id: in_team}
        if ctx.request.query.get("includeDirectChannels") == "true":
            body["directChannels"] = [
                p for p in mine if self.state.channel(p["channel_id"]).team < 0
            ]
        return json_response(body)

    # -- channel bookmarks ------------------------------------------------------------------
    def _licensed(self, handler: str) -> None:
        if not self.core.profile.licensed:
            raise ApiError(
                501,
                "api.channel.bookmark.channel_bookmark.license.error",
                "Your license does not support channel bookmarks.",
            )

    async def list_bookmarks(self, ctx: Ctx) -> web.Response:
        channel = self.channel_param(ctx)
        since = int_query(ctx, "bookmarks_since", 0)
        marks = [b for b in self.state.bookmarks_of(channel.id).values() if b["update_at"] > since]
        return json_response(sorted(marks, key=lambda b: b["sort_order"]))

    async def create_bookmark(self, ctx: Ctx) -> web.Response:
        self._licensed("createChannelBookmark")
        channel = self.channel_param(ctx)
        body = await json_body(ctx, "channelBookmark")
        if not isinstance(body, dict):
            raise bad_body("channelBookmark")
        name, link = body.get("display_name"), body.get("link_url", "")
        if not isinstance(name, str) or not name or not isinstance(link, str):
            raise bad_body("channelBookmark")
        table = self.state.bookmarks_of(channel.id)
        if len(table) >= MAX_BOOKMARKS_PER_CHANNEL:
            raise ApiError(
                400,
                "app.channel.bookmark.save.max_limit.app_error",
                "Cannot add more bookmarks to this channel.",
            )
        mark = P.bookmark_body(new_id(), channel.id, ctx.user.id, name, link, len(table), now_ms())
        table[mark["id"]] = mark
        await self.core.hub.to_channel(
            channel, "channel_bookmark_created", {"bookmark": P.dumps(mark)}
        )
        return json_response(mark, status=201)

    def _bookmark(self, ctx: Ctx) -> tuple[Channel, dict[str, Any]]:
        channel = self.channel_param(ctx)
        bid = ctx.request.match_info["bookmark_id"]
        mark = self.state.bookmarks_of(channel.id).get(bid) if is_valid_id(bid) else None
        if mark is None:
            raise ApiError(404, "app.channel.bookmark.get.app_error", "Unable to get the bookmark.")
        return channel, mark

    async def update_bookmark(self, ctx: Ctx) -> web.Response:
        self._licensed("updateChannelBookmark")
        channel, mark = self._bookmark(ctx)
        patch = await json_body(ctx, "channelBookmarkPatch")
        if not isinstance(patch, dict):
            raise bad_body("channelBookmarkPatch")
        for key in ("display_name", "link_url", "emoji"):
            if isinstance(patch.get(key), str):
                mark[key] = patch[key]
        mark["update_at"] = now_ms()
        body = {"updated": mark}
        await self.core.hub.to_channel(
            channel, "channel_bookmark_updated", {"bookmarks": P.dumps(body)}
        )
        return json_response(body)

    async def sort_bookmark(self, ctx: Ctx) -> web.Response:
        self._licensed("updateChannelBookmarkSortOrder")
        channel, mark = self._bookmark(ctx)
        order = await json_body(ctx, "channelBookmarkSortOrder")
        table = self.state.bookmarks_of(channel.id)
        if not isinstance(order, int) or not 0 <= order < len(table):
            raise bad_body("channelBookmarkSortOrder")
        ordered = sorted(table.values(), key=lambda b: b["sort_order"])
        ordered.remove(mark)
        ordered.insert(order, mark)
        now = now_ms()
        for i, b in enumerate(ordered):
            if b["sort_order"] != i:
                b["sort_order"], b["update_at"] = i, now
        return json_response(ordered)

    async def delete_bookmark(self, ctx: Ctx) -> web.Response:
        self._licensed("deleteChannelBookmark")
        channel, mark = self._bookmark(ctx)
        self.state.bookmarks_of(channel.id).pop(mark["id"], None)
        mark["delete_at"] = mark["update_at"] = now_ms()
        await self.core.hub.to_channel(
            channel, "channel_bookmark_deleted", {"bookmark": P.dumps(mark)}
        )
        return json_response(mark)

    # -- posts: all-teams search, by id, edit, delete ---------------------------------------
    async def search_all_teams(self, ctx: Ctx) -> web.Response:
        body = await json_body(ctx, "search")
        if not isinstance(body, dict) or not isinstance(body.get("terms"), str):
            raise bad_body("terms")
        words = [w for w in body["terms"].lower().split() if ":" not in w]
        per_page = body.get("per_page", 60)
        per_page = per_page if isinstance(per_page, int) and 0 < per_page <= 200 else 60
        posts = self.state.posts
        channels = self._all_channels(ctx.user)
        found = [
            pid
            for c in channels
            for pid in self.state.channel_state[c.id].post_ids
            if words and all(w in posts[pid]["message"].lower() for w in words)
        ]
        found.sort(key=lambda pid: -posts[pid]["create_at"])
        ids = found[:per_page]
        return json_response(P.search_results_body(ids, posts, words))

    def _readable_post(self, ctx: Ctx, post_id: str) -> dict[str, Any]:
        if not is_valid_id(post_id):
            raise bad_param("post_id")
        post = self.state.posts.get(post_id)
        if post is None:
            raise ApiError(404, "app.post.get.app_error", "Unable to get the post.")
        channel = self.state.channel(post["channel_id"])
        if channel is None or not self.state.can_read(ctx.user, channel):
            raise forbidden()
        return post

    async def get_post(self, ctx: Ctx) -> web.Response:
        return json_response(self._readable_post(ctx, ctx.request.match_info["post_id"]))

    async def posts_by_ids(self, ctx: Ctx) -> web.Response:
        ids = await json_body(ctx, "post_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise bad_body("post_ids")
        out = []
        for pid in dict.fromkeys(ids):
            post = self.state.posts.get(pid) if is_valid_id(pid) else None
            channel = self.state.channel(post["channel_id"]) if post else None
            if post and channel and self.state.can_read(ctx.user, channel):
                out.append(post)
        return json_response(out)

    async def patch_post(self, ctx: Ctx) -> web.Response:
        post = self._readable_post(ctx, ctx.request.match_info["post_id"])
        if post["user_id"] != ctx.user.id:
            raise forbidden()
        patch = await json_body(ctx, "post")
        if not isinstance(patch, dict):
            raise bad_body("post")
        message = patch.get("message")
        if message is not None:
            if not isinstance(message, str) or len(message) > MAX_POST_SIZE:
                raise bad_body("post")
            post["message"] = message
        now = now_ms()
        post["edit_at"] = post["update_at"] = now
        channel = self.state.channel(post["channel_id"])
        assert channel is not None
        await self.core.hub.to_channel(channel, "post_edited", {"post": P.dumps(post)})
        return json_response(post)

    async def delete_post(self, ctx: Ctx) -> web.Response:
        post = self._readable_post(ctx, ctx.request.match_info["post_id"])
        if post["user_id"] != ctx.user.id:
            raise forbidden()
        channel = self.state.channel(post["channel_id"])
        assert channel is not None
        self.state.forget_post(post["id"])
        deleted = {**post, "delete_at": now_ms()}
        await self.core.hub.to_channel(channel, "post_deleted", {"post": P.dumps(deleted)})
        return json_response(P.status_ok())

    # -- teams and channels -----------------------------------------------------------------
    async def team_stats(self, ctx: Ctx) -> web.Response:
        team = self.pop.teams[self.team_param(ctx, ctx.user)]
        return json_response(P.team_stats_body(team.id, len(team.member_numbers)))

    async def team_member(self, ctx: Ctx) -> web.Response:
        team = self.pop.teams[self.team_param(ctx, ctx.user)]
        user = self.user_param(ctx, self_only=False)
        if user.team != team.index:
            raise ApiError(404, "app.team.get_member.missing.app_error", "No team member found.")
        return json_response(P.team_member_body(team, user))

    async def public_channels(self, ctx: Ctx) -> web.Response:
        team = self.pop.teams[self.team_param(ctx, ctx.user)]
        page = int_query(ctx, "page", 0)
        per_page = int_query(ctx, "per_page", 60, high=MAX_PER_PAGE)
        chunk = team.channels[page * per_page : (page + 1) * per_page]
        return json_response([self.channel_json(c) for c in chunk])

    async def autocomplete_channels(self, ctx: Ctx) -> web.Response:
        team = self.pop.teams[self.team_param(ctx, ctx.user)]
        name = ctx.request.query.get("name", "").strip().lower()
        found = [c for c in team.channels if c.name.startswith(name)][:50]
        return json_response([self.channel_json(c) for c in found])

    async def channel_members(self, ctx: Ctx) -> web.Response:
        channel = self.channel_param(ctx)
        page = int_query(ctx, "page", 0)
        per_page = int_query(ctx, "per_page", 60, high=MAX_PER_PAGE)
        numbers = channel.members[page * per_page : (page + 1) * per_page]
        return json_response([self.member_json(self.pop.user(n), channel) for n in numbers])

    async def search_group_channels(self, ctx: Ctx) -> web.Response:
        body = await json_body(ctx, "channel_search")
        if not isinstance(body, dict) or not isinstance(body.get("term"), str):
            raise bad_body("channel_search")
        return json_response([])  # the population has no group channels
