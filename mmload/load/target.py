"""`mmload target check`: what the target server says about itself, read before a storm.

Everything comes from the server's own answers, on its pinned addresses (:mod:`mmload.load.pin`)
with TLS verified as the load engine verifies it: ``/api/v4/system/ping?get_server_status=true``
(reachable, database and file store), the ``X-Version-Id`` header and ``/api/v4/config/client``
(version and build), ``/api/v4/license/client`` and — with a system admin's token —
``/api/v4/config`` and ``/api/v4/cluster/status``. :mod:`mmload.load.storm_check` turns the
answers into findings. The admin token is sent only over verified TLS or plain loopback HTTP.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mmload.errors import RunFailed, UserError
from mmload.load.pin import is_loopback, open_socket
from mmload.load.tls import stdlib_context

TIMEOUT_S = 10.0
TOKEN_FLAG = "--admin-token-file"


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, headers (lower-case names), body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None


@dataclass
class TargetFacts:
    """What the target answered (None: not asked or not answered)."""

    url: str
    tls: str = "not used (http)"
    tls_verified: bool = True
    ping: dict[str, Any] = field(default_factory=dict)
    version_id: str | None = None
    version: str | None = None
    build: str | None = None
    license: dict[str, Any] | None = None
    rate_limit_headers: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    cluster: list[Any] | None = None
    config_note: str | None = None  # why the settings were not read


def insecure_context() -> ssl.SSLContext:
    """For the unauthenticated probes only, once verification has failed: to say what else the
    server answers. No token is ever sent on it."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def get(url: str, context: Any = stdlib_context, token: str | None = None) -> Answer:
    """``GET url`` on the pinned addresses; a redirect is an answer, not followed."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT_S)
    conn.sock = open_socket(url, TIMEOUT_S, context)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        conn.request(
            "GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), None, headers
        )
        resp = conn.getresponse()
        body = resp.read(4 << 20)
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
    finally:
        conn.close()


def reach(target: str) -> tuple[TargetFacts, Any]:
    """Ping the target; the facts so far and the SSL context the next probes use. Raise
    RunFailed (one line) when it does not answer at all."""
    facts = TargetFacts(target)
    url = target + "/api/v4/system/ping?get_server_status=true"
    context: Any = stdlib_context
    if target.startswith("https://"):
        try:
            answer = get(url)
            facts.tls = "certificate verified"
        except ssl.SSLCertVerificationError as exc:
            facts.tls_verified = False
            facts.tls = f"certificate NOT verified: {exc.verify_message or exc.reason}"
            context = insecure_context
            answer = _ping(url, context, target)
        except (OSError, ssl.SSLError) as exc:
            raise RunFailed(f"target {target} is unreachable: {exc}") from None
    else:
        answer = _ping(url, context, target)
    facts.ping = answer.json() if isinstance(answer.json(), dict) else {}
    facts.version_id = answer.headers.get("x-version-id")
    facts.rate_limit_headers = {
        k: v for k, v in answer.headers.items() if k.startswith("x-ratelimit-")
    }
    if answer.status not in (200, 500) or not facts.ping:
        raise RunFailed(
            f"target {target} is not a Mattermost server: GET /api/v4/system/ping answered "
            f"HTTP {answer.status}"
        )
    return facts, context


def _ping(url: str, context: Any, target: str) -> Answer:
    try:
        return get(url, context)
    except (OSError, ssl.SSLError) as exc:
        raise RunFailed(f"target {target} is unreachable: {exc}") from None


def read_public(facts: TargetFacts, context: Any) -> None:
    """Version and build (config/client) and the license (license/client)."""
    for path, key in (
        ("/api/v4/config/client?format=old", "config"),
        ("/api/v4/license/client?format=old", "license"),
    ):
        try:
            body = get(facts.url + path, context).json()
        except (OSError, ssl.SSLError):
            body = None
        if not isinstance(body, dict):
            continue
        if key == "config":
            facts.version, facts.build = body.get("Version"), body.get("BuildNumber")
        else:
            facts.license = body


def read_admin(facts: TargetFacts, token: str | None) -> None:
    """``/api/v4/config`` and ``/api/v4/cluster/status`` with the admin token; a refused token is
    bad input (exit 2, naming the flag). The token never appears in any message."""
    if token is None:
        facts.config_note = f"settings not read: no {TOKEN_FLAG} (a system admin's token)"
        return
    if not facts.tls_verified:
        facts.config_note = "settings not read: the token is not sent over unverified TLS"
        return
    if facts.url.startswith("http://") and not is_loopback(facts.url):
        facts.config_note = "settings not read: the token is not sent over plain HTTP off loopback"
        return
    answer = _admin_get(facts.url + "/api/v4/config", token)
    config = answer.json()
    if not isinstance(config, dict):
        raise RunFailed(f"GET /api/v4/config answered no JSON object (HTTP {answer.status})")
    facts.config = config
    cluster = _admin_get(facts.url + "/api/v4/cluster/status", token, optional=True).json()
    facts.cluster = cluster if isinstance(cluster, list) else None


def _admin_get(url: str, token: str, optional: bool = False) -> Answer:
    try:
        answer = get(url, stdlib_context, token)
    except (OSError, ssl.SSLError) as exc:
        raise RunFailed(f"GET {urlsplit(url).path} failed: {exc}") from None
    if answer.status in (401, 403) and not optional:
        body = answer.json()
        why = body.get("id") if isinstance(body, dict) else None
        raise UserError(
            f"the server refused the token (HTTP {answer.status}{' ' + why if why else ''}): "
            "it must be a system admin's token",
            field=TOKEN_FLAG,
        )
    return answer


def gather(target: str, token: str | None) -> TargetFacts:
    """Every answer `target check` reads."""
    facts, context = reach(target)
    read_public(facts, context)
    read_admin(facts, token)
    return facts
