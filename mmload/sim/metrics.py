"""Prometheus metrics named and labelled as Mattermost exports them (namespace ``mattermost``).

Each simulator has its own CollectorRegistry, so several can run in one process.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # Mattermost's Go exporter has no *_created series

# Mattermost's api_time buckets (prometheus.DefBuckets plus the long tail it adds).
API_TIME_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 50, 100)


class SimMetrics:
    """The simulator's metric families."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes…
        self.api_time = Histogram(
            "mattermost_api_time",
            "Time to execute the api handler",
            ["handler", "method", "status_code", "origin_client", "page_load_context"],
            buckets=API_TIME_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "mattermost_http_requests", "The total number of http API requests.", registry=r
        )
        self.http_errors = Counter(
            "mattermost_http_errors", "The total number of http API errors.", registry=r
        )
        self.websockets = Gauge(
            "mattermost_http_websockets_total",
            "The total number of websocket connections to this server.",
            ["origin_client"],
            registry=r,
        )
        self.logins = Counter(
            "mattermost_login_logins", "The total number of successful logins.", registry=r
        )
        self.logins_fail = Counter(
            "mattermost_login_logins_fail", "The total number of failed logins.", registry=r
        )
        self.ws_broadcasts = Counter(
            "mattermost_websocket_broadcasts",
            "The total number of websocket broadcasts sent because of a given event type.",
            ["name"],
            registry=r,
        )
        self.rate_limited = Counter(
            "mmload_sim_rate_limited",
            "Requests refused with 429 by a rate limiter (simulator only).",
            ["limiter"],
            registry=r,
        )
        self.logins_by_method = Counter(
            "mmload_sim_logins_by_method",
            "Successful logins by how the user authenticated (simulator only): method email, "
            "username, ldap or openid; mfa true when a TOTP code was checked; ldap_only as the "
            "login body said it.",
            ["method", "mfa", "ldap_only"],
            registry=r,
        )
        self.categories_created = Counter(
            "mmload_sim_sidebar_category_creations",
            "Users whose sidebar categories of a team were created on first load.",
            registry=r,
        )
        self.ws_reconnects = Counter(
            "mmload_sim_websocket_reconnects",
            "WebSocket reconnects by outcome (success: resumed; failure: new connection id; "
            "lossless: nothing missed), like the server's reconnect metric.",
            ["outcome"],
            registry=r,
        )
        self.db_pool_wait = Histogram(
            "mmload_sim_db_pool_wait_seconds",
            "Time a request waited for a database connection (simulator with --database).",
            buckets=API_TIME_BUCKETS,
            registry=r,
        )
        self.db_pool_waiting = Gauge(
            "mmload_sim_db_pool_waiting",
            "Requests waiting for a database connection right now.",
            registry=r,
        )
        self.db_pool_in_use = Gauge(
            "mmload_sim_db_pool_in_use", "Database connections in use right now.", registry=r
        )
        self.db_statements = Counter(
            "mmload_sim_db_statements",
            "SQL statements run, by the server statement they stand for.",
            ["statement"],
            registry=r,
        )
        self.pool_queued = Gauge(
            "mmload_sim_worker_pool_queued",
            "Requests waiting for a worker-pool slot (simulator only).",
            registry=r,
        )

    def exposition(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)
