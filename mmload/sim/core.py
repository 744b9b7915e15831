"""What every part of one simulated node shares: settings, state, metrics, the hub, the password
checker and the client config it serves. Handlers and the WebSocket get this object; the app
(routes, limiters, worker pool) builds it. It imports neither."""

from __future__ import annotations

from mmload.config.sim import SimSettings
from mmload.sim import payloads as P
from mmload.sim.costs import PasswordChecker
from mmload.sim.hub import Hub
from mmload.sim.metrics import SimMetrics
from mmload.sim.population import Population
from mmload.sim.state import SimState
from mmload.sim.store import MemoryStore, Store


class SimCore:
    """One simulated Mattermost node's shared parts."""

    def __init__(self, settings: SimSettings, population: Population | None = None):
        self.settings = settings
        self.profile = settings.profile
        self.state = SimState(settings, population)
        self.pop = self.state.pop
        self.pop.find_login("")  # build the login index now, not during the first login
        self.metrics = SimMetrics()
        self.hub = Hub(
            self.pop,
            self.metrics,
            send_queue_size=settings.ws_send_queue_size,
            inactive_timeout_s=settings.ws_inactive_timeout_s,
        )
        self.passwords = PasswordChecker(self.profile)
        self.store: Store = MemoryStore()  # server.start swaps in PostgreSQL for --database
        self.site_url = settings.site_url or ""
        self.config_full = b""
        self.config_limited = b""
        self.license = P.dumps(P.client_license(self.profile.licensed)).encode()
        self.config_hash = ""
        self.server_version_string = ""
        self.refresh_config()

    def refresh_config(self) -> None:
        """Serialise the client config (full and logged-out) and derive the version string."""
        full = P.client_config(self.profile, self.site_url, True)
        self.config_full = P.dumps(full).encode()
        limited = P.client_config(self.profile, self.site_url, False)
        self.config_limited = P.dumps(limited).encode()
        self.config_hash = P.config_hash(full)
        p = self.profile
        licensed = "true" if p.licensed else "false"
        self.server_version_string = (
            f"{p.server_version}.{p.build_number}.{self.config_hash}.{licensed}"
        )

    def set_site_url(self, url: str) -> None:
        """Called once the listening address is known (SiteURL in the client config)."""
        if not self.settings.site_url:
            self.site_url = url
            self.refresh_config()

    async def close(self) -> None:
        await self.hub.close_all()
        self.passwords.close()
        await self.store.close()
