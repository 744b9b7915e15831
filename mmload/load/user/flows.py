"""How a user arrives: its scheduled login, the web app's initial load, its WebSocket, and the
reconnect after an outage (the herd) with the reload the web app does then.

Two profiles (scenario ``client``): ``webapp-11`` (default; the 11.x web app's phases in
:mod:`mmload.load.user.webapp11`) and ``webapp-legacy`` (the older web app's sequential
per-team loads, kept here so ESR runs against older servers stay comparable).

Written as a mixin of :class:`~mmload.load.user.MattermostUser`: the attributes declared below
are the user's parts this behaviour uses.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable

import gevent
from gevent import GreenletExit

from mmload.config.scenario import Scenario
from mmload.load.arrivals import Arrival
from mmload.load.context import RunContext
from mmload.load.plan import Plan
from mmload.load.user.client import ApiClient
from mmload.load.user.legacy import LegacyFlow
from mmload.load.user.login import LoginMethods
from mmload.load.user.polls import Polls
from mmload.load.user.session import SessionStore
from mmload.load.user.webapp11 import LoginFailed, Webapp11Flow
from mmload.load.ws import MMWebSocket, ws_url

log = logging.getLogger(__name__)


def json_or_none_text(raw: object) -> object:
    """A JSON-encoded event field decoded, else None."""
    try:
        return json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


__all__ = ["ArrivalFlow", "LoginFailed"]


class ArrivalFlow(Webapp11Flow, LegacyFlow, Polls, LoginMethods):
    """Login, initial load, WebSocket, reconnect and reload, like the web app."""

    ctx: RunContext
    plan: Plan
    scenario: Scenario
    http: ApiClient
    session: SessionStore
    rng: random.Random
    host: str
    index: int
    source: str | None
    username: str
    scheduled_at: float | None
    lag_s: float | None
    ws: MMWebSocket | None
    _ws_job: gevent.Greenlet | None  # the WebSocket opened while the REST loads run (11.x)
    fire_ws: Callable[..., None]  # reports a WebSocket sample as a request of this user

    @property
    def legacy(self) -> bool:
        """True when the scenario asks for the older web app (``client: webapp-legacy``)."""
        return self.scenario.client == "webapp-legacy"

    # ---- the arrival --------------------------------------------------------------------
    def arrive(self) -> None:
        """Wait for the scheduled arrival, then log in, load and connect like the web app."""
        if not self.wait_for_slot():
            return
        arrival = Arrival.begin(self.username, self.scheduled_at, time.time())
        self.lag_s = arrival.lag_s
        try:
            self._ws_job = None
            with self.http.page_load("page_load"):  # as the web app labels its first load
                self.login(arrival)
                self.initial_load()
            arrival.loaded = time.time()
            arrival.outcome = "loaded"
            if self.scenario.websocket.enabled:
                self.await_websocket()
                if self.ws and self.ws.connected:
                    arrival.ws_connected = self.ws.connected_at or time.time()
        except LoginFailed as exc:
            arrival.fail(str(exc))
        except Exception as exc:  # a bug or an unexpected answer: record it, keep the user alive
            log.exception("login flow of %s failed", self.username)
            arrival.fail(f"{type(exc).__name__}: {exc}")
        finally:
            self.lag_s = None
            self.ctx.record_arrival(arrival)

    def wait_for_slot(self) -> bool:
        """Sleep until the scheduled login time; False when the run stops arrivals first."""
        if self.scheduled_at is not None:
            delay = self.scheduled_at - time.time()
            if delay > 0:
                try:
                    gevent.sleep(delay)
                except GreenletExit:  # the run stopped before this user's turn
                    self.ctx.record_arrival(Arrival(self.username, self.scheduled_at))
                    raise
        if self.ctx.stop:
            if self.scheduled_at is not None:
                self.ctx.record_arrival(Arrival(self.username, self.scheduled_at))
            return False
        return True

    # ---- login and initial load -----------------------------------------------------------
    def login(self, arrival: Arrival) -> None:
        """config/client, license/client (together in 11.x), then the sign-in of the user's
        method (password, LDAP, MFA: POST /users/login; OpenID: through the IdP)."""
        if self.legacy:
            self.http.request("GET", "/config/client?format=old", "/config/client")
            self.http.request("GET", "/license/client?format=old", "/license/client")
        else:
            self.config_and_license()
        body = self.sign_in()  # by the credential's method (mmload.load.user.login)
        self.session.user_id = body.get("id", "me")
        self.session.logged_in = True
        arrival.logged_in = time.time()

    def initial_load(self) -> None:
        """The web app's first page load after login (11.x: ``loadMe``, then the logged-in
        root and team controller with the WebSocket opening meanwhile, then the channel)."""
        if self.legacy:
            self.legacy_initial_load()
        else:
            self.load_me()
            self.load_team()

    # ---- channels -----------------------------------------------------------------------------
    def posts_since(self, channel_id: str) -> list[str]:
        """The channel's posts since the last view (or its first page); returns their authors."""
        since = self.session.viewed.get(channel_id)
        window = f"since={since}" if since else "page=0&per_page=30"
        body = self.http.get_json(
            f"/channels/{channel_id}/posts?{window}&skipFetchThreads=false"
            "&collapsedThreads=true&collapsedThreadsExtended=false",
            "/channels/{channel_id}/posts",
        )
        return self.session.remember_posts(channel_id, body)

    def view_channel(self, channel_id: str) -> None:
        """View a channel as the profile's web app does."""
        if self.legacy:
            self.legacy_view_channel(channel_id)
        else:
            self.view_channel_11(channel_id)

    # ---- WebSocket, reconnect and reload ---------------------------------------------------
    def connect_websocket(self) -> None:
        """Open the WebSocket like the web client (failures are retried with its backoff).

        11.x: the browser's session cookie on the upgrade, the resume parameters, and the
        reloads of ``websocket_actions.jsx`` on reconnect (``reconnect()``) and on a new
        connection id (``restart()``), each in its own greenlet."""
        spec = self.scenario.websocket
        s = self.session
        if self.legacy:
            auth = spec.auth or "challenge"
            cookie = f"MMAUTHTOKEN={s.token}" if auth == "header" and s.csrf else None
        else:
            auth = spec.auth or ("cookie" if s.cookie_header else "header")
            cookie = s.cookie_header
        self.ws = MMWebSocket(
            ws_url(self.host),
            s.token or "",
            self.fire_ws,
            spec,
            timeout_s=self.scenario.request_timeout_s,
            cookie=cookie,
            resume=not self.legacy,
            auth=auth,
            source=self.source,
        )
        if not self.legacy:
            self.ws.on_reconnect = lambda: gevent.spawn(self.reconnect_reload)
            self.ws.on_missed = lambda: gevent.spawn(self.reconnect_reload, True)
            self.ws.on_event = self.on_ws_event
        if not self.ws.connect():
            self.ws.lost(ConnectionError("first connect failed"))

    def on_ws_event(self, msg: dict) -> None:
        """What the web app's store takes from events that matters to later actions: a deleted
        post disappears (no thread view or reaction of it afterwards)."""
        if msg.get("event") == "post_deleted":
            post = json_or_none_text((msg.get("data") or {}).get("post"))
            if isinstance(post, dict) and post.get("id"):
                self.session.forget_post(post["id"])

    def reconnect_herd(self) -> None:
        """The reconnect herd: the socket drops with the outage; reconnect by the backoff rule."""
        drop_at = self.plan.herd_drop_at or time.time()
        gevent.sleep(max(0.0, drop_at - time.time()))
        if self.ws is not None:
            self.ws.close(code=1006)
        offset = self.plan.backoff().reconnect_time(self.scenario.herd.outage_s, self.rng)
        scheduled = drop_at + offset
        gevent.sleep(max(0.0, scheduled - time.time()))
        arrival = Arrival.begin(self.username, scheduled, time.time(), phase="reconnect")
        self.lag_s = arrival.lag_s
        try:
            ok = self.ws is not None and self.ws.connect({"page_load_context": "reconnect"})
            if ok:
                arrival.ws_connected = time.time()
            self.reconnect_reload()
            arrival.loaded = time.time()
            if ok:
                arrival.outcome = "loaded"
            else:
                arrival.fail("websocket reconnect failed")
                if self.ws is not None:
                    self.ws.lost(ConnectionError("reconnect failed"))
        finally:
            self.lag_s = None
            self.ctx.record_arrival(arrival)

    def reconnect_reload(self, restart: bool = False) -> None:
        """What the web app fetches after its socket reconnects (page-load context reconnect);
        ``restart``: the server gave a new connection id (11.x adds the client config)."""
        if not self.legacy:
            return self.reconnect_11(restart)
        with self.http.page_load("reconnect"):
            self.http.request("GET", "/users/me/teams/unread", "/users/me/teams/unread")
            self.legacy_load_team()
            if self.session.channel_id:
                self.posts_since(self.session.channel_id)

    def page_reload(self) -> None:
        """A browser reload: the socket closes, then the login page's config and license, the
        initial load and a new WebSocket (opened during the load in 11.x)."""
        if self.ws is not None:
            self.ws.close()
        self._ws_job = None
        self.session.viewed.clear()  # the browser's store starts empty
        self.session.loaded_roles.clear()
        with self.http.page_load("page_load"):
            if self.legacy:
                self.http.request("GET", "/config/client?format=old", "/config/client")
                self.http.request("GET", "/license/client?format=old", "/license/client")
            else:
                self.config_and_license()
            try:
                self.initial_load()
            except LoginFailed:
                return
        if self.scenario.websocket.enabled:
            self.await_websocket()

    def await_websocket(self) -> None:
        """The WebSocket of this load: opened meanwhile (11.x; joined, then let go: a finished
        greenlet kept per user is memory for nothing) or now (the older web app)."""
        job, self._ws_job = self._ws_job, None
        if job is None:
            self.connect_websocket()
        else:
            job.join()
