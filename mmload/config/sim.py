"""Config models of the simulator: the seed population and the server-cost profiles.

This module is the only home of their defaults. A profile is data: it composes a password hash
cost, the per-node login mutex, the login rate limiter and a bounded worker pool, plus the server
version the simulator reports. See docs/simulator.md for which Mattermost versions each named
profile models and the sources behind it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from mmload.config.base import StrictModel
from mmload.config.bounds import Count, Number
from mmload.config.credentials import Credential

DEFAULT_PASSWORD = "Loadtest-1!"
MAX_PASSWORD_BYTES = 72  # Mattermost caps passwords at 72 bytes (bcrypt's limit, kept for PBKDF2)


class PopulationSpec(StrictModel):
    """A deterministic test population: the same numbers always give the same ids and names.

    Membership rule (documented in docs/simulator.md): user i (1-based) belongs to team
    ``(i-1) % teams``; every team member is in ``town-square`` and ``off-topic`` and in up to
    ``channels_joined`` of the team's other public channels, chosen round-robin from i.
    """

    users: int = Field(20_000, ge=1, le=1_000_000, description="number of users")
    teams: int = Field(10, ge=1, le=1_000, description="number of teams")
    channels_per_team: int = Field(
        8,
        ge=2,
        le=1_000,
        description="public channels per team, town-square and off-topic included",
    )
    channels_joined: int = Field(
        3, ge=0, le=1_000, description="extra channels each user joins besides the two defaults"
    )
    posts_per_channel: int = Field(5, ge=0, le=1_000, description="seed posts per channel")
    seed: int = Field(1, ge=0, le=2**31 - 1, description="seed of every generated id")
    password: str = Field(
        DEFAULT_PASSWORD, min_length=8, description="every user's password (8..72 bytes)"
    )
    username_prefix: str = Field("user-", pattern=r"^[a-z][a-z0-9._-]{0,20}$")
    email_domain: str = Field("example.com", pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$")

    @field_validator("password")
    @classmethod
    def _password_fits(cls, value: str) -> str:
        if len(value.encode()) > MAX_PASSWORD_BYTES:
            raise ValueError(f"must be at most {MAX_PASSWORD_BYTES} bytes (Mattermost's limit)")
        return value


class RateLimit(StrictModel):
    """GCRA login limiter keyed by the remote address host (X-Forwarded-For ignored)."""

    per_sec: Number(0, 100_000, lo_open=True) = 5
    burst: int = Field(10, ge=0, le=100_000)


class GlobalRateLimit(StrictModel):
    """``RateLimitSettings`` as the server's global limiter applies them (``app/ratelimit.go``):
    one GCRA bucket per key around every route, the WebSocket included. The key is the client
    address (``VaryByRemoteAddr``: the first ``trusted_proxy_ip_header`` — ServiceSettings'
    ``TrustedProxyIPHeader`` — present, else the peer),
    or the session token (``VaryByUser``, falling back to the address), plus the lowercased value
    of ``VaryByHeader`` when set."""

    per_sec: Number(0, 100_000, lo_open=True) = Field(10, description="RateLimitSettings.PerSec")
    max_burst: int = Field(100, ge=0, le=100_000, description="RateLimitSettings.MaxBurst")
    memory_store_size: int = Field(10_000, ge=1, le=1_000_000)
    vary_by_remote_addr: bool = True
    vary_by_user: bool = False
    vary_by_header: str = Field("", max_length=128, pattern=r"^[A-Za-z0-9-]*$")
    trusted_proxy_ip_header: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="ServiceSettings.TrustedProxyIPHeader (default none: the peer address)",
    )


class WorkerPool(StrictModel):
    """K slots held S ms by every HTTP request (not the WebSocket); excess waits FIFO.

    Capacity is ``size * 1000 / service_ms`` requests per second. ``queue_max`` bounds the
    waiting requests; past it the simulator answers 503 at once (null: unbounded).
    """

    size: int = Field(ge=1, le=100_000)
    service_ms: Number(0, 60_000, lo_open=True)
    queue_max: Count(0, 100_000_000) | None = None
    degrade_after_s: Number(0, 86_400) | None = Field(
        None,
        description="from this long after the simulator started, each request holds its slot "
        "degraded_service_ms instead (a failover, a lost node: the pool overflows mid-run)",
    )
    degraded_service_ms: Number(0, 60_000, lo_open=True) | None = None

    @model_validator(mode="after")
    def _degrade_both(self) -> WorkerPool:
        if (self.degrade_after_s is None) != (self.degraded_service_ms is None):
            raise ValueError("give degrade_after_s and degraded_service_ms together")
        return self


class Profile(StrictModel):
    """A server-cost profile: what a login storm pays on a real Mattermost node."""

    description: str = ""
    server_version: str = Field("10.11.0", pattern=r"^\d+\.\d+\.\d+$")
    build_number: str = "dev"
    password_hash: Literal["none", "bcrypt", "pbkdf2"] = "none"
    bcrypt_cost: int = Field(10, ge=4, le=16)
    pbkdf2_iterations: int = Field(600_000, ge=1, le=10_000_000)
    login_mutex: bool = False
    login_rate_limit: RateLimit | None = None
    worker_pool: WorkerPool | None = None
    hash_threads: int | None = Field(
        None, ge=1, le=256, description="password-check threads (null: one per CPU)"
    )
    global_rate_limit: GlobalRateLimit | None = None
    failed_attempts: Literal["read_update", "claim"] = Field(
        "read_update",
        description="read_update: check the user's count, then write it (before 11.9); "
        "claim: a conditional increment under a row lock, reset on success (11.9+)",
    )
    seeded_password_hash: Literal["none", "bcrypt", "pbkdf2"] | None = Field(
        None,
        description="how the seeded users' passwords are stored before their first login "
        "(null: password_hash); bcrypt under a pbkdf2 profile re-hashes at the first login",
    )
    licensed: bool = Field(False, description="an Enterprise licence (bookmarks need one)")


FAST = Profile(description="no server costs: keeps the demo and tests fast")

NAMED_PROFILES: dict[str, Profile] = {
    "fast": FAST,
    "v10.2": Profile(
        description="before the login mutex: bcrypt cost 10, logins in parallel, no limiter",
        server_version="10.2.0",
        password_hash="bcrypt",
    ),
    "v10.11": Profile(
        description="ESR 10.11 (before 10.11.12): bcrypt cost 10 + per-node login mutex",
        server_version="10.11.0",
        password_hash="bcrypt",
        login_mutex=True,
    ),
    "v10.11-ratelimit": Profile(
        description="ESR 10.11.12+ with RateLimitSettings.Enable: bcrypt + mutex + limiters",
        server_version="10.11.12",
        password_hash="bcrypt",
        login_mutex=True,
        login_rate_limit=RateLimit(),
        global_rate_limit=GlobalRateLimit(),
    ),
    "v11.5": Profile(
        description="11.5 .. 11.8 with rate limiting on: PBKDF2 600k + mutex + limiters",
        server_version="11.5.0",
        password_hash="pbkdf2",
        seeded_password_hash="bcrypt",
        login_mutex=True,
        login_rate_limit=RateLimit(),
        global_rate_limit=GlobalRateLimit(),
    ),
    "v11.9": Profile(
        description="11.9+: PBKDF2 600k, failed attempts claimed per user, limiters on",
        server_version="11.9.0",
        password_hash="pbkdf2",
        seeded_password_hash="bcrypt",
        login_rate_limit=RateLimit(),
        global_rate_limit=GlobalRateLimit(),
        failed_attempts="claim",
    ),
    "overload": Profile(
        description="a small worker pool (4 slots x 20 ms = 200 req/s) whose queue grows",
        server_version="10.11.0",
        worker_pool=WorkerPool(size=4, service_ms=20),
    ),
}


class WebappPlugin(StrictModel):
    """A webapp plugin manifest as ``GET /plugins/webapp`` lists it."""

    id: str = Field(pattern=r"^[a-zA-Z0-9._-]{3,190}$")
    version: str = Field("1.0.0", pattern=r"^[0-9A-Za-z.+-]{1,64}$")
    bundle_path: str = Field("", max_length=512)


class OpenIdSettings(StrictModel):
    """``OpenIdSettings`` as the server uses them: the IdP's discovery document (its
    authorization, token and userinfo endpoints) and this server's client at the IdP."""

    discovery_endpoint: str = Field(pattern=r"^https?://\S+$")
    client_id: str = Field(min_length=1, max_length=512)
    client_secret: SecretStr = Field(description="from a file or $MMLOAD_SIM_OPENID_SECRET only")
    scope: str = Field("openid profile email", max_length=512)


class SimSettings(StrictModel):
    """Everything `mmload sim` needs to start."""

    host: str = "127.0.0.1"
    port: int = Field(8065, ge=0, le=65535)
    metrics_port: int | None = Field(8067, ge=0, le=65535)
    population: PopulationSpec = Field(default_factory=PopulationSpec)
    profile: Profile = Field(default_factory=lambda: FAST.model_copy())
    profile_name: str = "fast"
    site_url: str | None = None
    ws_auth_timeout_s: Number(0.01, 3600) = Field(5.0, description="close unauthenticated sockets")
    ws_ping_interval_s: Number(0.1, 3600) = Field(60.0, description="server ping frames")
    posts_kept_per_channel: int = Field(200, ge=1, le=100_000)
    session_length_web_hours: Count(1, 876_000) = 720
    max_payload_bytes: int = Field(
        300_000, ge=1024, le=1 << 30, description="ServiceSettings.MaximumPayloadSizeBytes"
    )
    webapp_plugins: list[WebappPlugin] = Field(
        default_factory=list, description="what GET /plugins/webapp lists"
    )
    ws_dead_queue_size: int = Field(128, ge=1, le=10_000, description="events kept for resume")
    ws_send_queue_size: int = Field(256, ge=1, le=100_000, description="events queued per conn")
    ws_inactive_timeout_s: float = Field(
        300.0, gt=0, le=86_400, description="a closed connection's queue is kept this long"
    )
    database_url: str | None = Field(
        None, description="postgresql://… to keep the hot tables in PostgreSQL (null: memory)"
    )
    db_max_open_conns: int = Field(300, ge=1, le=10_000, description="SqlSettings.MaxOpenConns")
    db_max_idle_conns: int = Field(20, ge=0, le=10_000, description="SqlSettings.MaxIdleConns")
    max_users_per_team: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="TeamSettings.MaxUsersPerTeam (null: the largest team)",
    )
    admin_token: SecretStr | None = Field(
        None, description="the token of the one system admin (GET /api/v4/config); never shown"
    )
    accounts: list[Credential] = Field(
        default_factory=list,
        repr=False,
        description="--accounts: the first users take these login ids, passwords and methods",
    )
    openid: OpenIdSettings | None = Field(None, description="the OpenID Connect IdP, if any")

    @model_validator(mode="after")
    def _accounts_fit(self) -> SimSettings:
        if len(self.accounts) > self.population.users:
            raise ValueError(f"--accounts has {len(self.accounts)} users, more than --users")
        return self

    @field_validator("host")
    @classmethod
    def _host_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql://")
        return value
