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
)


# Where the spec's schema contradicts the server's Go types (the server wins; each case is listed
# in docs/simulator.md): model.User.Timezone is a map[string]string, so "useAutomaticTimezone"
# is the string "true"/"false" (the spec's own description says so), not a JSON boolean.
# model.Team.PolicyID is a *string without omitempty: null for teams outside a retention policy.
SERVER_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    ("Timezone", "useAutomaticTimezone"): {"type": "string", "enum": ["true", "false"]},
    ("Team", "policy_id"): {"type": ["string", "null"]},
}


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
