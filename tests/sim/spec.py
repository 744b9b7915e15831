"""Mattermost's OpenAPI document, built from ../shared/mattermost-api as its SOURCE.md says,
and a response validator: status + body of every simulated endpoint are checked against it."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

PATH_FILES = (
    "users.yaml",
    "teams.yaml",
    "channels.yaml",
    "preferences.yaml",
    "system.yaml",
    "roles.yaml",
    "status.yaml",
    "posts.yaml",
    "limits.yaml",
    "health.yaml",
    "imports.yaml",
    "jobs.yaml",
    "plugins.yaml",
    "reactions.yaml",
)


# Where the spec's schema contradicts the server's Go types (the server wins; each case is listed
# in docs/simulator.md): model.User.Timezone is a map[string]string, so "useAutomaticTimezone"
# is the string "true"/"false" (the spec's own description says so), not a JSON boolean.
# model.Team.PolicyID is a *string without omitempty: null for teams outside a retention policy.
SERVER_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    ("Timezone", "useAutomaticTimezone"): {"type": "string", "enum": ["true", "false"]},
    ("Team", "policy_id"): {"type": ["string", "null"]},
    # model.ThreadResponse.Participants is []*User; the spec says Post.
    # getServerLimits encodes one model.ServerLimits; the spec says an array of them.
    ("__response__", "/api/v4/limits/server"): {"$ref": "#/components/schemas/ServerLimits"},
    # getCategoriesForTeamForUser encodes one model.OrderedSidebarCategories (spec: an array).
    ("__response__", "/api/v4/users/{user_id}/teams/{team_id}/channels/categories"): {
        "$ref": "#/components/schemas/OrderedSidebarCategories"
    },
    ("UserThread", "participants"): {
        "type": "array",
        "items": {"$ref": "#/components/schemas/User"},
    },
}

# Fields the server's model structs send that the spec's schemas do not declare (the spec lags
# the server). The fidelity tests fail on any other undeclared field, so a typo cannot hide.
SERVER_FIELDS_NOT_IN_SPEC = frozenset(
    {
        "AppError.detailed_error",
        "ServerLimits.maxUsersHardLimit",
        "ServerLimits.lastAccessiblePostTime",
        "ServerLimits.postHistoryLimit",
        "ScheduledPost.delete_at",
        "ChannelMemberWithTeamData.explicit_roles",
        "SidebarCategoryWithChannels.sort_order",
        "SidebarCategoryWithChannels.sorting",
        "SidebarCategoryWithChannels.muted",
        "SidebarCategoryWithChannels.collapsed",
        "Channel.group_constrained",
        "Channel.last_root_post_at",
        "Channel.policy_id",
        "Channel.props",
        "Channel.scheme_id",
        "Channel.shared",
        "Channel.total_msg_count_root",
        "ChannelMember.explicit_roles",
        "ChannelMember.mention_count_root",
        "ChannelMember.msg_count_root",
        "ChannelMember.scheme_admin",
        "ChannelMember.scheme_guest",
        "ChannelMember.scheme_user",
        "ChannelMember.urgent_mention_count",
        "ChannelNotifyProps.ignore_channel_mentions",
        "ChannelStats.files_count",
        "ChannelStats.guest_count",
        "ChannelStats.pinnedpost_count",
        "Post.hashtags",
        "Post.is_pinned",
        "Post.last_reply_at",
        "Post.participants",
        "Post.reply_count",
        "Post.has_reactions",
        "PostList.first_inaccessible_post_time",
        "PostListWithSearchMatches.first_inaccessible_post_time",
        "PostListWithSearchMatches.has_next",
        "PostListWithSearchMatches.next_post_id",
        "PostListWithSearchMatches.prev_post_id",
        "Role.built_in",
        "Role.create_at",
        "Role.delete_at",
        "Role.update_at",
        "Status.dnd_end_time",
        "SystemStatusResponse.ActiveSearchBackend",
        "Team.cloud_limits_archived",
        "Team.company_name",
        "Team.group_constrained",
        "Team.scheme_id",
        "TeamMember.create_at",
        "TeamMember.scheme_guest",
        "TeamUnread.mention_count_root",
        "TeamUnread.msg_count_root",
        "TeamUnread.thread_count",
        "TeamUnread.thread_mention_count",
        "TeamUnread.thread_urgent_mention_count",
        "User.auth_data",
        "User.disable_welcome_email",
        "User.position",
        "UserNotifyProps.comments",
        "UserNotifyProps.push_status",
        "UserThread.delete_at",
        "UserThread.is_urgent",
        "UserThread.unread_mentions",
        "UserThread.unread_replies",
        "UserThreads.total_unread_mentions",
        "UserThreads.total_unread_threads",
        "UserThreads.total_unread_urgent_mentions",
    }
)


@functools.cache
def build_document(api_dir: Path) -> dict[str, Any]:
    """Concatenate introduction + ``paths:`` + every path file + definitions, then parse."""
    parts = [(api_dir / "introduction.yaml").read_text(), "paths:\n"]
    parts += [(api_dir / name).read_text() for name in PATH_FILES]
    parts.append((api_dir / "definitions.yaml").read_text())
    return yaml.safe_load("\n".join(parts))


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` → JSON Schema ``type: [T, "null"]``; recurse."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items()}
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


class Spec:
    """Look up operations and validate responses against their schemas."""

    def __init__(self, api_dir: Path):
        self.doc = build_document(api_dir)
        root = _openapi_to_jsonschema(self.doc)
        for (schema, prop), override in SERVER_OVERRIDES.items():
            if schema == "__response__":
                get = root["paths"][prop]["get"]["responses"]["200"]
                get["content"]["application/json"]["schema"] = override
                continue
            root["components"]["schemas"][schema]["properties"][prop] = override
        self.registry = Registry().with_resource(
            "urn:mattermost", Resource.from_contents(root, default_specification=DRAFT4)
        )
        self.root = root

    def operation(self, template: str, method: str) -> dict[str, Any]:
        """The operation object of ``method`` on path ``template``."""
        try:
            return self.root["paths"][template][method.lower()]
        except KeyError:
            raise AssertionError(f"{method} {template} is not in the spec") from None

    def response_schema(self, template: str, method: str, status: int) -> dict[str, Any] | None:
        """The JSON schema of the documented response, following a $ref into components."""
        responses = self.operation(template, method)["responses"]
        resp = responses.get(str(status))
        if resp is None:
            raise AssertionError(
                f"{method} {template}: status {status} not documented ({sorted(responses)})"
            )
        if "$ref" in resp:
            name = resp["$ref"].rsplit("/", 1)[-1]
            resp = self.root["components"]["responses"][name]
        content = resp.get("content", {}).get("application/json")
        return None if content is None else content.get("schema")

    def validate(
        self, template: str, method: str, status: int, body: Any, *, spec_status: int | None = None
    ) -> None:
        """Assert ``body`` matches the schema documented for ``status`` (or ``spec_status``
        where the real server and the spec disagree, see docs/simulator.md)."""
        schema = self.response_schema(template, method, spec_status or status)
        if schema is None:
            return
        validator = jsonschema.Draft4Validator({"allOf": [_rebase(schema)]}, registry=self.registry)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            e = errors[0]
            where = "/".join(str(p) for p in e.absolute_path)
            raise AssertionError(
                f"{method} {template} {status}: at '{where}': {e.message[:300]}\n"
                f"body: {json.dumps(body)[:500]}"
            )
        unknown = undeclared_fields(self, schema, body) - SERVER_FIELDS_NOT_IN_SPEC
        if unknown:
            raise AssertionError(
                f"{method} {template} {status}: fields neither in the spec nor in the "
                f"documented server-only list: {sorted(unknown)}"
            )


def _rebase(schema: Any) -> Any:
    """Point local ``#/components/...`` refs at the registered document."""
    if isinstance(schema, list):
        return [_rebase(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for k, v in schema.items():
        if k == "$ref" and isinstance(v, str) and v.startswith("#/"):
            out[k] = "urn:mattermost" + v
        else:
            out[k] = _rebase(v)
    return out


def undeclared_fields(spec: Spec, schema: Any, body: Any, path: str = "") -> set[str]:
    """Keys of ``body`` that the schema's ``properties`` do not declare (``Type.field``)."""
    schema = _resolve(spec, schema)
    out: set[str] = set()
    if isinstance(body, list) and isinstance(schema, dict) and "items" in schema:
        for item in body:
            out |= undeclared_fields(spec, schema["items"], item, path)
    elif isinstance(body, dict) and isinstance(schema, dict):
        props = schema.get("properties")
        if props is None:
            return out
        name = schema.get("x-name", path or "body")
        for key, value in body.items():
            if key not in props:
                out.add(f"{name}.{key}")
            else:
                out |= undeclared_fields(spec, props[key], value, f"{name}.{key}")
    return out


def _resolve(spec: Spec, schema: Any) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = {**spec.root["components"]["schemas"][name], "x-name": name}
    return schema
