"""JSON bodies shaped like the real server's (``server/public/model/*.go``).

Builders are small functions over population objects; the simulator caches the bytes of the ones
that never change (users, teams, channels) so hot handlers only concatenate.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mmload.config.sim import Profile
from mmload.sim.population import EPOCH_MS, Channel, Team, User

USER_ROLES = "system_user"
TEAM_ROLES = "team_user"
CHANNEL_ROLES = "channel_user"


def dumps(value: Any) -> str:
    """Compact JSON like Go's encoding/json (no spaces)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def app_error_body(
    error_id: str, message: str, detailed: str, request_id: str, status: int
) -> dict[str, Any]:
    """``model.AppError`` as ``ToJSON`` writes it (``is_oauth`` is gone from current servers)."""
    return {
        "id": error_id,
        "message": message,
        "detailed_error": detailed,
        "request_id": request_id,
        "status_code": status,
    }


def ping_body(with_status: bool) -> dict[str, str]:
    """``GET /system/ping``; ``get_server_status=true`` adds the database and file store."""
    body = {
        "ActiveSearchBackend": "database",
        "AndroidLatestVersion": "",
        "AndroidMinVersion": "",
        "IosLatestVersion": "",
        "IosMinVersion": "",
        "status": "OK",
    }
    if with_status:
        body.update(database_status="OK", filestore_status="OK")
    return body


def user_body(user: User) -> dict[str, Any]:
    """A user as ``GET /users/{id}`` returns it (sanitized: no password, no auth data)."""
    return {
        "id": user.id,
        "create_at": EPOCH_MS,
        "update_at": EPOCH_MS,
        "delete_at": 0,
        "username": user.username,
        "auth_data": "",
        "auth_service": user.auth_service,
        "email": user.email,
        "email_verified": True,
        "nickname": "",
        "first_name": user.first_name,
        "last_name": user.last_name,
        "position": "",
        "roles": USER_ROLES,
        "props": {},
        "notify_props": {
            "channel": "true",
            "comments": "never",
            "desktop": "mention",
            "desktop_sound": "true",
            "email": "true",
            "first_name": "false",
            "mention_keys": "",
            "push": "mention",
            "push_status": "away",
        },
        "last_password_update": EPOCH_MS,
        "locale": "en",
        "timezone": {
            "automaticTimezone": "",
            "manualTimezone": "",
            "useAutomaticTimezone": "true",
        },
        "disable_welcome_email": False,
    }


def profile_body(user: User) -> dict[str, Any]:
    """Another user's profile: ``ClearNonProfileFields`` empties notify props, email
    verification and the password update time, which ``omitempty`` then leaves out."""
    body = user_body(user)
    for key in ("notify_props", "email_verified", "last_password_update"):
        del body[key]
    return body


def team_body(team: Team) -> dict[str, Any]:
    """A team as ``GET /users/me/teams`` lists it."""
    return {
        "id": team.id,
        "create_at": EPOCH_MS,
        "update_at": EPOCH_MS,
        "delete_at": 0,
        "display_name": team.display_name,
        "name": team.name,
        "description": "",
        "email": "",
        "type": "O",
        "company_name": "",
        "allowed_domains": "",
        "invite_id": "",
        "allow_open_invite": True,
        "scheme_id": None,
        "group_constrained": None,
        "policy_id": None,
        "cloud_limits_archived": False,
    }


def team_member_body(team: Team, user: User) -> dict[str, Any]:
    """A team membership."""
    return {
        "team_id": team.id,
        "user_id": user.id,
        "roles": TEAM_ROLES,
        "delete_at": 0,
        "scheme_guest": False,
        "scheme_user": True,
        "scheme_admin": False,
        "explicit_roles": "",
        "create_at": EPOCH_MS,
    }


def channel_body(channel: Channel, team_id: str, last_post_at: int, total: int) -> dict[str, Any]:
    """A channel."""
    return {
        "id": channel.id,
        "create_at": channel.create_at,
        "update_at": channel.create_at,
        "delete_at": 0,
        "team_id": team_id,
        "type": channel.type,
        "display_name": channel.display_name,
        "name": channel.name,
        "header": "",
        "purpose": "",
        "last_post_at": last_post_at,
        "last_root_post_at": last_post_at,
        "total_msg_count": total,
        "total_msg_count_root": total,
        "extra_update_at": 0,
        "creator_id": channel.creator_id,
        "scheme_id": None,
        "props": None,
        "group_constrained": None,
        "shared": None,
        "policy_id": None,
    }


def channel_member_body(
    channel_id: str, user_id: str, last_viewed_at: int, msg_count: int
) -> dict[str, Any]:
    """A channel membership."""
    return {
        "channel_id": channel_id,
        "user_id": user_id,
        "roles": CHANNEL_ROLES,
        "last_viewed_at": last_viewed_at,
        "msg_count": msg_count,
        "mention_count": 0,
        "mention_count_root": 0,
        "urgent_mention_count": 0,
        "msg_count_root": msg_count,
        "notify_props": {
            "desktop": "default",
            "email": "default",
            "ignore_channel_mentions": "default",
            "mark_unread": "all",
            "push": "default",
        },
        "last_update_at": last_viewed_at,
        "scheme_guest": False,
        "scheme_user": True,
        "scheme_admin": False,
        "explicit_roles": "",
    }


def preferences_body(user: User) -> list[dict[str, str]]:
    """The preferences a fresh web-app user has after the first login."""
    return [
        {"user_id": user.id, "category": "tutorial_step", "name": user.id, "value": "999"},
        {"user_id": user.id, "category": "recommended_next_steps", "name": "hide", "value": "true"},
        {
            "user_id": user.id,
            "category": "display_settings",
            "name": "use_military_time",
            "value": "false",
        },
    ]


_ROLE_PERMISSIONS: dict[str, list[str]] = {
    "system_user": [
        "create_team",
        "list_public_teams",
        "join_public_teams",
        "create_direct_channel",
        "create_group_channel",
        "view_members",
        "list_team_channels",
        "create_emojis",
        "delete_emojis",
        "edit_custom_group",
        "create_custom_group",
        "delete_custom_group",
        "manage_custom_group_members",
        "restore_custom_group",
    ],
    "system_admin": ["manage_system"],
    "system_guest": ["create_direct_channel", "create_group_channel"],
    "team_user": [
        "list_team_channels",
        "join_public_channels",
        "read_public_channel",
        "view_team",
        "create_public_channel",
        "create_private_channel",
        "invite_user",
        "add_user_to_team",
    ],
    "team_admin": ["manage_team", "remove_user_from_team", "manage_team_roles"],
    "team_guest": ["view_team"],
    "channel_user": [
        "read_channel",
        "add_reaction",
        "remove_reaction",
        "manage_public_channel_members",
        "upload_file",
        "get_public_link",
        "create_post",
        "use_channel_mentions",
        "manage_private_channel_members",
        "delete_post",
        "edit_post",
        "read_channel_content",
        "use_group_mentions",
    ],
    "channel_admin": ["manage_channel_roles"],
    "channel_guest": ["read_channel", "add_reaction", "create_post", "read_channel_content"],
    "custom_group_user": [],
}


def role_body(name: str) -> dict[str, Any]:
    """One of the built-in roles (ids derived from the name)."""
    return {
        "id": hashlib.blake2b(name.encode(), digest_size=13).hexdigest(),
        "name": name,
        "display_name": f"authentication.roles.{name}.name",
        "description": f"authentication.roles.{name}.description",
        "create_at": EPOCH_MS,
        "update_at": EPOCH_MS,
        "delete_at": 0,
        "permissions": _ROLE_PERMISSIONS[name],
        "scheme_managed": True,
        "built_in": True,
    }


ROLE_NAMES = tuple(_ROLE_PERMISSIONS)


def client_config(profile: Profile, site_url: str, logged_in: bool) -> dict[str, str]:
    """``GET /config/client?format=old``: every value a string, as the real server sends."""
    limited = {
        "Version": profile.server_version,
        "BuildNumber": profile.build_number,
        "BuildDate": "Thu Jan  1 00:00:00 UTC 2026",
        "BuildHash": "mmload-sim",
        "BuildHashEnterprise": "none",
        "BuildEnterpriseReady": "false",
        "SiteName": "Mattermost (mmload sim)",
        "SiteURL": site_url,
        "DiagnosticsEnabled": "false",
        "TelemetryId": "",
        "EnableSignInWithEmail": "true",
        "EnableSignInWithUsername": "true",
        "EnableSignUpWithEmail": "true",
        "EnableLdap": "false",
        "EnableSaml": "false",
        "EnableSignUpWithGitLab": "false",
        "EnableSignUpWithGoogle": "false",
        "EnableSignUpWithOffice365": "false",
        "EnableSignUpWithOpenId": "false",
        "EnableMultifactorAuthentication": "false",
        "EnforceMultifactorAuthentication": "false",
        "EnableCustomBrand": "false",
        "CustomDescriptionText": "",
        "EnableUserCreation": "true",
        "NoAccounts": "false",
        "PasswordMinimumLength": "8",
        "IsDefaultMarketplace": "true",
        "WebsocketURL": "",
        "WebsocketPort": "80",
        "WebsocketSecurePort": "443",
        "FeatureFlagCollapsedThreads": "true",
    }
    if not logged_in:
        return limited
    return {
        **limited,
        "CollapsedThreads": "default_on",
        "EnableCustomEmoji": "true",
        "EnableReliableWebSockets": "true",
        "ExperimentalPrimaryTeam": "",
        "MaxPostSize": "16383",
        "MaxFileSize": "104857600",
        "TeammateNameDisplay": "username",
        "RestrictDirectMessage": "any",
        "ShowEmailAddress": "true",
        "ShowFullName": "true",
        "EnableUserStatuses": "true",
        "EnableUserTypingMessages": "true",
        "TimeBetweenUserTypingUpdatesMilliseconds": "5000",
        "EnablePostSearch": "true",
        "EnableFileSearch": "true",
        "ExtendSessionLengthWithActivity": "true",
        "SessionLengthWebInHours": "720",
    }


def client_license(licensed: bool = False) -> dict[str, str]:
    """``GET /license/client?format=old``: Team Edition, or a licensed server's subset."""
    if not licensed:
        return {"IsLicensed": "false"}
    return {"IsLicensed": "true", "SkuShortName": "enterprise", "Cluster": "true"}


def config_hash(config: dict[str, str]) -> str:
    """The client-config hash in ``server_version`` strings (``ClientConfigHash``)."""
    return hashlib.md5(dumps(config).encode(), usedforsecurity=False).hexdigest()


# -- posts -------------------------------------------------------------------------------------
def post_body(
    post_id: str,
    create_at: int,
    user_id: str,
    channel_id: str,
    message: str,
    *,
    root_id: str = "",
    props: dict[str, Any] | None = None,
    pending_post_id: str = "",
) -> dict[str, Any]:
    """A post as the server returns it."""
    return {
        "id": post_id,
        "create_at": create_at,
        "update_at": create_at,
        "edit_at": 0,
        "delete_at": 0,
        "is_pinned": False,
        "user_id": user_id,
        "channel_id": channel_id,
        "root_id": root_id,
        "original_id": "",
        "message": message,
        "type": "",
        "props": props or {},
        "hashtags": "",
        "pending_post_id": pending_post_id,
        "reply_count": 0,
        "last_reply_at": 0,
        "participants": None,
        "metadata": {},
    }


def post_list_body(
    ids: list[str],
    posts: dict[str, dict[str, Any]],
    *,
    prev_id: str = "",
    next_id: str = "",
    has_next: bool = False,
) -> dict[str, Any]:
    """``model.PostList``: ``order`` newest first, ``posts`` by id."""
    return {
        "order": ids,
        "posts": {i: posts[i] for i in ids},
        "next_post_id": next_id,
        "prev_post_id": prev_id,
        "has_next": has_next,
        "first_inaccessible_post_time": 0,
    }


def search_results_body(
    ids: list[str], posts: dict[str, dict[str, Any]], words: list[str]
) -> dict[str, Any]:
    """``model.PostSearchResults``: a post list plus the matched words of each post."""
    return {
        **post_list_body(ids, posts),
        "matches": {i: words for i in ids},
    }


def reaction_body(user_id: str, post_id: str, emoji: str, channel_id: str, now: int) -> dict:
    """``model.Reaction``."""
    return {
        "user_id": user_id,
        "post_id": post_id,
        "emoji_name": emoji,
        "create_at": now,
        "update_at": now,
        "delete_at": 0,
        "remote_id": "",
        "channel_id": channel_id,
    }


def posted_event_data(channel: Channel, team_id: str, author: User, post: dict) -> dict:
    """The ``posted`` WebSocket event's data (the post itself as a JSON string)."""
    return {
        "channel_display_name": channel.display_name,
        "channel_name": channel.name,
        "channel_type": channel.type,
        "post": dumps(post),
        "sender_name": f"@{author.username}",
        "set_online": True,
        "team_id": team_id,
    }


def thread_body(
    root: dict[str, Any],
    reply_count: int,
    last_reply_at: int,
    participants: list[dict[str, Any]],
) -> dict[str, Any]:
    """``model.ThreadResponse`` (participants are users, not posts)."""
    return {
        "id": root["id"],
        "reply_count": reply_count,
        "last_reply_at": last_reply_at,
        "last_viewed_at": 0,
        "participants": participants,
        "post": root,
        "unread_replies": 0,
        "unread_mentions": 0,
        "is_urgent": False,
        "delete_at": 0,
    }


def threads_body(total: int, threads: list[dict[str, Any]]) -> dict[str, Any]:
    """``model.Threads``."""
    return {
        "total": total,
        "total_unread_threads": 0,
        "total_unread_mentions": 0,
        "total_unread_urgent_mentions": 0,
        "threads": threads,
    }


# -- users, teams, channels (computed) ---------------------------------------------------------
def status_body(user_id: str, status: str, last_activity_at: int) -> dict[str, Any]:
    """A user status."""
    return {
        "user_id": user_id,
        "status": status,
        "manual": False,
        "last_activity_at": last_activity_at,
        "dnd_end_time": 0,
    }


def team_unread_body(team_id: str, msgs: int) -> dict[str, Any]:
    """``model.TeamUnread``."""
    return {
        "team_id": team_id,
        "msg_count": msgs,
        "mention_count": 0,
        "mention_count_root": 0,
        "msg_count_root": msgs,
        "thread_count": 0,
        "thread_mention_count": 0,
        "thread_urgent_mention_count": 0,
    }


def channel_stats_body(channel_id: str, member_count: int) -> dict[str, Any]:
    """``model.ChannelStats``."""
    return {
        "channel_id": channel_id,
        "member_count": member_count,
        "guest_count": 0,
        "pinnedpost_count": 0,
        "files_count": 0,
    }


def view_channel_body(times: dict[str, int]) -> dict[str, Any]:
    """``model.ChannelViewResponse``."""
    return {"status": "OK", "last_viewed_at_times": times}


# -- WebSocket ---------------------------------------------------------------------------------
EMPTY_BROADCAST = {
    "omit_users": None,
    "user_id": "",
    "channel_id": "",
    "team_id": "",
    "connection_id": "",
    "omit_connection_id": "",
}


def event_prefix(event: str, data: dict[str, Any], broadcast: dict[str, Any]) -> str:
    """``{"event":…,"data":…,"broadcast":…,"seq":`` — the caller appends the number and ``}``."""
    return f'{{"event":{dumps(event)},"data":{dumps(data)},"broadcast":{dumps(broadcast)},"seq":'


def hello_data(connection_id: str, hostname: str, server_version: str) -> dict[str, str]:
    """The ``hello`` event's data."""
    return {
        "connection_id": connection_id,
        "server_hostname": hostname,
        "server_version": server_version,
    }


def pong_reply(seq: int, version: str, server_time_ms: int) -> dict[str, Any]:
    """The reply to the ``ping`` action."""
    data = {"text": "pong", "version": version, "server_time": server_time_ms, "node_id": ""}
    return {"status": "OK", "seq_reply": seq, "data": data}


def ws_ok(seq: int, data: Any = None) -> dict[str, Any]:
    """An action's OK reply (``data`` only when there is some)."""
    body: dict[str, Any] = {"status": "OK", "seq_reply": seq}
    if data is not None:
        body["data"] = data
    return body


def ws_fail(seq: int, error_id: str, message: str, status_code: int = 401) -> dict[str, Any]:
    """An action's error reply (the AppError shape inside ``error``)."""
    error = {"id": error_id, "message": message, "detailed_error": "", "status_code": status_code}
    return {"status": "FAIL", "seq_reply": seq, "error": error}


# -- the 11.x web app's load, drafts, scheduled posts, bookmarks --------------------------------
def channel_member_with_team_body(member: dict[str, Any], team: Team | None) -> dict[str, Any]:
    """``model.ChannelMemberWithTeamData`` (``GET /users/{id}/channel_members``)."""
    return {
        **member,
        "team_display_name": team.display_name if team else "",
        "team_name": team.name if team else "",
        "team_update_at": EPOCH_MS if team else 0,
    }


def sidebar_category_row(
    user_id: str, team_id: str, kind: str, display_name: str, sort_order: int, sorting: str
) -> dict[str, Any]:
    """A ``SidebarCategories`` row as ``createInitialSidebarCategories`` inserts it."""
    return {
        "id": f"{kind}_{user_id}_{team_id}",
        "user_id": user_id,
        "team_id": team_id,
        "sort_order": sort_order,
        "sorting": sorting,
        "type": kind,
        "display_name": display_name,
        "muted": False,
        "collapsed": False,
    }


def initial_sidebar_categories(user_id: str, team_id: str) -> list[dict[str, Any]]:
    """Favorites (0), Channels (10), Direct Messages (20, sorted by recency)."""
    return [
        sidebar_category_row(user_id, team_id, "favorites", "Favorites", 0, ""),
        sidebar_category_row(user_id, team_id, "channels", "Channels", 10, ""),
        sidebar_category_row(user_id, team_id, "direct_messages", "Direct Messages", 20, "recent"),
    ]


def ordered_categories_body(categories: list[dict[str, Any]]) -> dict[str, Any]:
    """``model.OrderedSidebarCategories``."""
    return {"categories": categories, "order": [c["id"] for c in categories]}


def server_limits_body() -> dict[str, int]:
    """``model.ServerLimits`` as a non-admin gets it (no user counts)."""
    return {
        "maxUsersLimit": 0,
        "maxUsersHardLimit": 0,
        "activeUserCount": 0,
        "lastAccessiblePostTime": 0,
        "postHistoryLimit": 0,
    }


def webapp_plugin_body(plugin_id: str, version: str) -> dict[str, Any]:
    """``Manifest.ClientManifest()`` of a plugin with a webapp bundle."""
    return {
        "id": plugin_id,
        "version": version,
        "webapp": {"bundle_path": f"/static/{plugin_id}/{plugin_id}_bundle.js"},
    }


def draft_body(
    user_id: str, channel_id: str, root_id: str, message: str, props: dict, create_at: int, now: int
) -> dict[str, Any]:
    """``model.Draft``."""
    return {
        "create_at": create_at,
        "update_at": now,
        "delete_at": 0,
        "user_id": user_id,
        "channel_id": channel_id,
        "root_id": root_id,
        "message": message,
        "props": props,
        "file_ids": [],
    }


def scheduled_post_body(
    post_id: str, draft: dict[str, Any], scheduled_at: int, processed_at: int = 0
) -> dict[str, Any]:
    """``model.ScheduledPost``: a draft with an id and a time to send it."""
    return {**draft, "id": post_id, "scheduled_at": scheduled_at, "processed_at": processed_at}


def bookmark_body(
    bookmark_id: str,
    channel_id: str,
    owner_id: str,
    display_name: str,
    link_url: str,
    sort_order: int,
    now: int,
) -> dict[str, Any]:
    """``model.ChannelBookmarkWithFileInfo`` of a link bookmark."""
    return {
        "id": bookmark_id,
        "create_at": now,
        "update_at": now,
        "delete_at": 0,
        "channel_id": channel_id,
        "owner_id": owner_id,
        "file_id": "",
        "display_name": display_name,
        "sort_order": sort_order,
        "link_url": link_url,
        "image_url": "",
        "emoji": "",
        "type": "link",
        "original_id": "",
        "parent_id": "",
    }


def channel_unread_body(team_id: str, channel_id: str, msgs: int) -> dict[str, Any]:
    """``model.ChannelUnread``."""
    return {
        "team_id": team_id,
        "channel_id": channel_id,
        "msg_count": msgs,
        "mention_count": 0,
        "mention_count_root": 0,
        "urgent_mention_count": 0,
        "msg_count_root": msgs,
        "notify_props": {"mark_unread": "all"},
    }


def team_stats_body(team_id: str, members: int) -> dict[str, Any]:
    """``model.TeamStats``."""
    return {"team_id": team_id, "total_member_count": members, "active_member_count": members}


def status_ok() -> dict[str, str]:
    """``ReturnStatusOK``."""
    return {"status": "OK"}


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG (the default profile picture stands in for the server's)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = b"\x00" + bytes(rgb) * width
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(row * height, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


PROFILE_IMAGE = _png(128, 128, (22, 109, 224))
