"""A system admin's view of the simulated server: ``GET /api/v4/config`` (the settings that decide a
login storm, from the profile and the simulator's settings) and ``GET /api/v4/cluster/status``.

Both need ``manage_system``; the simulator's one admin is whoever presents the token of
``--admin-token-file`` (``Authorization: Bearer``, as a personal access token is sent). Any
other valid session gets 403, no session 401 — the server's answers. Without an admin token
configured, nobody is an admin.
"""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from mmload.config.sim import SimSettings
from mmload.sim.core import SimCore
from mmload.sim.errors import forbidden, session_expired
from mmload.sim.request import Ctx, Router, json_response, token_of

MASKED = "********"  # what the server puts in place of secrets (model.FakeSetting)


def add_routes(core: SimCore, r: Router) -> None:
    """Register the admin endpoints."""
    h = AdminHandlers(core)
    r("GET", "/api/v4/config", "getConfig", h.get_config, session=False)
    r("GET", "/api/v4/cluster/status", "getClusterStatus", h.cluster_status, session=False)


class AdminHandlers:
    """Endpoints a system admin reads."""

    def __init__(self, core: SimCore):
        self.core = core

    def require_admin(self, ctx: Ctx) -> None:
        """401 without a token the server knows, 403 for a token that is not the admin's."""
        token, _source = token_of(ctx.request)
        secret = self.core.settings.admin_token
        if (
            token
            and secret is not None
            and hmac.compare_digest(token.encode(), secret.get_secret_value().encode())
        ):
            return
        if token and self.core.state.session(token) is not None:
            raise forbidden()
        raise session_expired("token not found")

    async def get_config(self, ctx: Ctx) -> web.Response:
        self.require_admin(ctx)
        return json_response(server_config(self.core.settings, self.largest_team()))

    async def cluster_status(self, ctx: Ctx) -> web.Response:
        self.require_admin(ctx)
        return json_response([])  # one node, no cluster: the server answers an empty list

    def largest_team(self) -> int:
        users, teams = self.core.pop.spec.users, self.core.pop.spec.teams
        return -(-users // teams)


def server_config(settings: SimSettings, largest_team: int) -> dict[str, Any]:
    """The parts of ``model.Config`` the simulator models, as ``GET /config`` returns them."""
    p = settings.profile
    g = p.global_rate_limit
    hours = settings.session_length_web_hours
    return {
        "ServiceSettings": {
            "SiteURL": settings.site_url or "",
            "TrustedProxyIPHeader": list(g.trusted_proxy_ip_header) if g else [],
            "SessionLengthWebInHours": hours,
            "SessionLengthMobileInHours": hours,
            "SessionLengthSSOInHours": hours,
            "MaximumPayloadSizeBytes": settings.max_payload_bytes,
        },
        "TeamSettings": {"MaxUsersPerTeam": settings.max_users_per_team or largest_team},
        "SqlSettings": {
            "DriverName": "postgres",
            "DataSource": MASKED,
            "MaxOpenConns": settings.db_max_open_conns,
            "MaxIdleConns": settings.db_max_idle_conns,
        },
        "RateLimitSettings": {
            "Enable": g is not None or p.login_rate_limit is not None,
            "PerSec": g.per_sec if g else 10,
            "MaxBurst": g.max_burst if g else 100,
            "MemoryStoreSize": g.memory_store_size if g else 10_000,
            "VaryByRemoteAddr": g.vary_by_remote_addr if g else True,
            "VaryByUser": g.vary_by_user if g else False,
            "VaryByHeader": g.vary_by_header if g else "",
        },
        "ClusterSettings": {"Enable": False, "ClusterName": ""},
    }
