"""``MattermostUser``: the Locust user, composed of its client, its session and its behaviour."""

from __future__ import annotations

import random
from typing import Any

import gevent
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

from mmload.load.actions import ActionPicker, idle_seconds
from mmload.load.context import run_context
from mmload.load.pin import host_of, source_of
from mmload.load.ticker import Ticker, stop_ticker
from mmload.load.tls import client_context
from mmload.load.user.client import ApiClient, PinnedPool, json_or_none
from mmload.load.user.flows import ArrivalFlow
from mmload.load.user.handlers import ActionHandlers
from mmload.load.user.more_handlers import MoreHandlers
from mmload.load.user.planned_handlers import PlannedHandlers
from mmload.load.user.session import SessionStore
from mmload.load.ws import PING_NAME, MMWebSocket

# One generator for the process's users (a Mersenne Twister's state is 2.5 KiB: per user, 36 MiB
# at 15,000); unseeded, so no two runs draw the same, as when each user had its own.
SHARED_RNG = random.Random()


class _SessionField:
    """A user attribute that lives in its session store (``user.team_id`` is
    ``user.session.team_id``), kept for locustfiles written against the user."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, user: Any, owner: type | None = None) -> Any:
        return self if user is None else getattr(user.session, self.name)

    def __set__(self, user: Any, value: Any) -> None:
        setattr(user.session, self.name, value)


class MattermostUser(ArrivalFlow, ActionHandlers, MoreHandlers, PlannedHandlers, FastHttpUser):
    """One simulated web-app user (see :mod:`mmload.load.user`)."""

    wait_time = constant(0)  # idle time is the action mix's own rule, slept inside the task
    max_retries = 0
    concurrency = 2  # HTTP connections per user: the scenario's http_connections (set below)
    insecure = False  # TLS verified: $MMLOAD_CA_FILE (the proxy's CA) or the system's store
    ssl_context_factory = staticmethod(client_context)

    logged_in = _SessionField()
    user_id = _SessionField()
    team_id = _SessionField()
    channel_id = _SessionField()
    channels = _SessionField()

    _pickers: dict[int, ActionPicker] = {}

    def __init__(self, environment: Any) -> None:
        self.ctx = run_context(environment)
        self.plan = self.ctx.plan
        self.scenario = self.plan.scenario
        timeout = self.scenario.request_timeout_s  # the scenario's, read by FastHttpUser
        self.network_timeout = self.connection_timeout = timeout
        self.concurrency = self.scenario.http_connections  # read by FastHttpUser's __init__
        super().__init__(environment)
        self.index = self.plan.next_user_index()
        self.source = source_of(self.plan.sources, self.index)  # None: the system's choice
        agent = self.client.client  # to the target's pinned addresses; no redirect off it
        agent.clientpool = PinnedPool.replacing(agent.clientpool, host_of(self.host), self.source)
        self.username = self.plan.username(self.index)
        self.scheduled_at = self.plan.arrival_time(self.index)
        self.rng = SHARED_RNG
        self.lag_s: float | None = None
        self.session = SessionStore()
        self.http = ApiClient(self.client, self.session, self.plan.limiter)
        self.ws: MMWebSocket | None = None
        self._ws_job: gevent.Greenlet | None = None
        self._herd: gevent.Greenlet | None = None
        self._polls: Ticker | None = None

    # ---- for locustfiles ------------------------------------------------------------------
    def api(self, method: str, path: str, name: str, json: Any = None) -> Any:
        """One named, recorded API call (see :meth:`ApiClient.request`)."""
        return self.http.request(method, path, name, json)

    def get_json(self, path: str, name: str) -> Any:
        """GET and decode JSON; None when the request failed."""
        return json_or_none(self.http.request("GET", path, name))

    def context(self) -> dict[str, Any]:
        """Added to every request event: who sent it and, in a scheduled flow, its lag."""
        return {"user": self.username, "lag_s": self.lag_s}

    def fire_ws(self, **kw: Any) -> None:
        """Report a WebSocket sample as a request of this user. Pings are not part of the
        login flow even while it runs (the 11.x socket opens during the load): no lag."""
        ctx = self.context()
        if kw.get("name") == PING_NAME:
            ctx["lag_s"] = None
        kw["context"] = {**ctx, **(kw.get("context") or {})}
        self.environment.events.request.fire(**kw)

    def picker(self) -> ActionPicker:
        """The action picker for this scenario's weights (shared by the process's users)."""
        key = id(self.scenario)
        if key not in self._pickers:
            self._pickers[key] = ActionPicker(
                self.scenario.action_weights, only_listed=self.scenario.only_listed_actions
            )
        return self._pickers[key]

    # ---- Locust's lifecycle ---------------------------------------------------------------
    def on_start(self) -> None:
        """Arrive (scheduled login and initial load); in a herd, await the outage."""
        self.arrive()
        if self.plan.herd_drop_at and self.ws is not None:
            self._herd = gevent.spawn(self.reconnect_herd)
        if self.session.logged_in and not self.legacy:
            self._polls = self.start_polls()

    def on_stop(self) -> None:
        """Close the WebSocket (no reconnect) and stop the herd and poll greenlets."""
        if self._herd is not None:
            self._herd.kill(block=False)
        stop_ticker(self._polls)
        if self.ws is not None:
            self.ws.close()

    @task
    def steady_state(self) -> None:
        """One action of the mix, then the idle time."""
        idle = self.scenario.idle
        if self.session.logged_in and self.scenario.actions and self.session.team_id:
            action = self.picker().pick()
            getattr(self, action.handler)()
        gevent.sleep(idle_seconds(idle.min_ms, idle.avg_ms, self.rng))
