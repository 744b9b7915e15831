"""``MattermostUser``: a Locust user that behaves like the Mattermost web app.

Login the way the web app does (client config and license, login, roles, me, preferences, teams,
team members, teams unread, the current team's channels and channel members, view channel), then
the WebSocket (``authentication_challenge``, ``hello``, a ping every 30 s, the web client's
reconnect backoff), then the action mix of Mattermost's load-test tool with its idle time.
Request names are endpoint templates (``GET /api/v4/channels/{channel_id}/posts``).

Use it from a plain locustfile (Locust picks up the imported class)::

    from mmload.load.user import MattermostUser  # noqa: F401

    # or extend it:
    class MyUser(MattermostUser):
        ...

then ``locust -f locustfile.py --host http://127.0.0.1:8065``. Without an mmload plan, users
log in as ``user-1``, ``user-2``… as they spawn and run the default action mix. Under
``mmload run`` the plan gives each user its scheduled login time (open model) and scenario.

Driving it from your own Locust ``Environment`` (as the benchmarks do)::

    env.mmload_plan = Plan(scenario=Scenario(name="x", kind="steady", ...), worker_name="w0")
    collector = Collector(env, "w0", RecordWriter(run_dir, meta).ingest, flush_s=2.0)
    env.mmload_collector = collector   # arrivals are recorded through it
    collector.start()

Useful pieces for subclasses: ``api(method, path, template)`` (one named, recorded request),
``get_json``, ``logged_in``, ``user_id``, ``team_id``, ``channel_id``, ``ws`` (``MMWebSocket``),
and every action handler listed in ``actions.yaml``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
import uuid
from typing import Any

import gevent
from gevent import GreenletExit
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

from mmload.load.actions import ActionPicker, idle_seconds
from mmload.load.plan import Plan, get_plan
from mmload.load.ws import MMWebSocket, ws_url

API = "/api/v4"
log = logging.getLogger(__name__)


class LoginFailed(Exception):
    """The login flow could not finish (the arrival is recorded as failed)."""


class MattermostUser(FastHttpUser):
    """One simulated web-app user (see the module docstring)."""

    wait_time = constant(0)  # idle time is the action mix's own rule, slept inside the task
    network_timeout = 60.0
    connection_timeout = 60.0
    max_retries = 0
    concurrency = 6  # the browser's parallel connections per host

    _pickers: dict[int, ActionPicker] = {}

    def __init__(self, environment: Any) -> None:
        self.plan: Plan = get_plan(environment)
        timeout = self.plan.scenario.request_timeout_s
        self.network_timeout = self.connection_timeout = timeout  # read by FastHttpUser
        super().__init__(environment)
        self.scenario = self.plan.scenario
        self.index = self.plan.next_user_index()
        self.username = self.plan.username(self.index)
        self.scheduled_at = self.plan.arrival_time(self.index)
        self.rng = random.Random()
        self.lag_s: float | None = None
        self.page_load_context: str | None = None
        self.token: str | None = None
        self.csrf: str | None = None
        self.cookie_header: str | None = None
        self.me: dict[str, Any] = {}
        self.user_id = "me"
        self.team_id: str | None = None
        self.channels: list[dict[str, Any]] = []
        self.channel_id: str | None = None
        self.viewed: dict[str, int] = {}
        self.post_ids: list[str] = []
        self.oldest_post: dict[str, str] = {}
        self.known_users: list[str] = []
        self.roots: dict[str, list[str]] = {}  # root post ids per channel (replies stay in it)
        self.logged_in = False
        self.ws: MMWebSocket | None = None
        self._herd: gevent.Greenlet | None = None

    # ---- plumbing -------------------------------------------------------------------------
    def context(self) -> dict[str, Any]:
        """Added to every request event: who sent it and, in a scheduled flow, its lag."""
        return {"user": self.username, "lag_s": self.lag_s}

    def picker(self) -> ActionPicker:
        """The action picker for this scenario's weights (shared by the process's users)."""
        key = id(self.scenario)
        if key not in self._pickers:
            self._pickers[key] = ActionPicker(
                self.scenario.action_weights, only_listed=self.scenario.only_listed_actions
            )
        return self._pickers[key]

    def _headers(self, method: str) -> dict[str, str]:
        h = {"X-Requested-With": "XMLHttpRequest"}
        if self.cookie_header:
            h["Cookie"] = self.cookie_header
            if self.csrf and method != "GET":
                h["X-CSRF-Token"] = self.csrf
        elif self.token:  # the server set no session cookie: authenticate by header
            h["Authorization"] = f"Bearer {self.token}"
        if self.page_load_context:
            h["X-Page-Load-Context"] = self.page_load_context
        return h

    def api(self, method: str, path: str, name: str, json: Any = None) -> Any:
        """One API call named by its endpoint template; returns the response (failures recorded).

        ``path`` is relative to /api/v4; ``name`` is the template without the prefix, e.g.
        ``/channels/{channel_id}/posts``.
        """
        if self.plan.limiter:
            self.plan.limiter.wait()
        with self.client.request(
            method,
            API + path,
            name=f"{method} {API}{name}",
            json=json,
            headers=self._headers(method),
            catch_response=True,
        ) as resp:
            status = resp.status_code or 0
            if 200 <= status < 400:
                resp.success()
            else:
                resp.failure(_error_message(resp))
        return resp

    def get_json(self, path: str, name: str) -> Any:
        """GET and decode JSON; None when the request failed."""
        resp = self.api("GET", path, name)
        return _json_or_none(resp)

    def _fire_ws(self, **kw: Any) -> None:
        kw["context"] = {**self.context(), **(kw.get("context") or {})}
        self.environment.events.request.fire(**kw)

    # ---- lifecycle ------------------------------------------------------------------------
    def on_start(self) -> None:
        """Wait for the scheduled arrival, then log in and load like the web app."""
        if self.scheduled_at is not None:
            delay = self.scheduled_at - time.time()
            if delay > 0:
                try:
                    gevent.sleep(delay)
                except GreenletExit:  # the run stopped before this user's turn
                    self._add_arrival(
                        {
                            "user": self.username,
                            "scheduled": self.scheduled_at,
                            "outcome": "pending",
                            "phase": "login",
                        }
                    )
                    raise
        started = time.time()
        self.lag_s = started - self.scheduled_at if self.scheduled_at is not None else None
        row: dict[str, Any] = {
            "user": self.username,
            "scheduled": self.scheduled_at,
            "started": started,
            "lag_ms": self.lag_s * 1000 if self.scheduled_at is not None else None,
            "outcome": "pending",
            "phase": "login",
        }
        try:
            self.page_load_context = "page_load"  # as the web app labels its first load
            self.login(row)
            self.initial_load()
            self.page_load_context = None
            row["loaded"] = time.time()
            row["outcome"] = "loaded"
            if self.scenario.websocket.enabled:
                self.connect_websocket()
                if self.ws and self.ws.connected:
                    row["ws_connected"] = time.time()
        except LoginFailed as exc:
            row["outcome"] = "failed"
            row["error"] = str(exc)
        except Exception as exc:  # a bug or an unexpected answer: record it, keep the user alive
            log.exception("login flow of %s failed", self.username)
            row["outcome"] = "failed"
            row["error"] = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            self.lag_s = None
            self.page_load_context = None
            self._add_arrival(row)
        if self.plan.herd_drop_at and self.ws is not None:
            self._herd = gevent.spawn(self._reconnect_herd)

    def _add_arrival(self, row: dict[str, Any]) -> None:
        collector = getattr(self.environment, "mmload_collector", None)
        if collector is not None:
            collector.add_arrival(row)

    def on_stop(self) -> None:
        """Close the WebSocket (no reconnect) and stop the herd greenlet."""
        if self._herd is not None:
            self._herd.kill(block=False)
        if self.ws is not None:
            self.ws.close()

    @task
    def steady_state(self) -> None:
        """One action of the mix, then the idle time."""
        idle = self.scenario.idle
        if self.logged_in and self.scenario.actions and self.team_id:
            action = self.picker().pick()
            getattr(self, action.handler)()
        gevent.sleep(idle_seconds(idle.min_ms, idle.avg_ms, self.rng))

    # ---- login and initial load -------------------------------------------------------------
    def login(self, row: dict[str, Any]) -> None:
        """config/client, license/client, then POST /users/login (cookies + Token header)."""
        self.api("GET", "/config/client?format=old", "/config/client")
        self.api("GET", "/license/client?format=old", "/license/client")
        pw = self.scenario.population.password
        resp = self.api(
            "POST", "/users/login", "/users/login", json={"login_id": self.username, "password": pw}
        )
        if resp.status_code != 200:
            raise LoginFailed(f"login: {_error_message(resp)}")
        self.token = resp.headers.get("Token") or resp.headers.get("token")
        self._adopt_session_cookies(resp)
        body = _json_or_none(resp) or {}
        self.user_id = body.get("id", "me")
        self.logged_in = True
        row["logged_in"] = time.time()

    def _adopt_session_cookies(self, resp: Any) -> None:
        """Send the session cookies as a fixed ``Cookie`` header from now on.

        The same bytes the browser sends, without http.cookiejar's per-request cost (about a
        third of a request's CPU in Locust); the jar is switched off after login.
        """
        names = ("MMAUTHTOKEN", "MMUSERID", "MMCSRF")
        values = {n: _cookie(resp, n) for n in names}
        jar = getattr(self.client.client, "cookiejar", None)
        if jar is not None:
            for c in jar:
                if c.name in names and not values.get(c.name):
                    values[c.name] = c.value
            self.client.client.cookiejar = None
        if values.get("MMAUTHTOKEN"):
            self.cookie_header = "; ".join(f"{n}={v}" for n, v in values.items() if v)
            self.csrf = values.get("MMCSRF")

    def initial_load(self) -> None:
        """The web app's first page load after login."""
        me = self.get_json("/users/me", "/users/me")
        if not isinstance(me, dict):
            raise LoginFailed("users/me failed")
        self.me = me
        self.user_id = me.get("id", self.user_id)
        self.api("GET", "/users/me/preferences", "/users/me/preferences")
        teams = self.get_json("/users/me/teams", "/users/me/teams")
        members = self.get_json("/users/me/teams/members", "/users/me/teams/members")
        self.api("GET", "/users/me/teams/unread", "/users/me/teams/unread")
        roles = set((me.get("roles") or "system_user").split())
        for m in members if isinstance(members, list) else []:
            roles.update((m.get("roles") or "").split())
        roles.add("channel_user")
        self.api("POST", "/roles/names", "/roles/names", json=sorted(r for r in roles if r))
        if not teams:
            raise LoginFailed("the user is in no team")
        self.team_id = teams[0]["id"]
        self.load_team()
        if self.channels:
            self.view_channel(self._pick_channel(default_first=True))

    def load_team(self) -> None:
        """The current team's channels and channel members."""
        chans = self.get_json(
            f"/users/me/teams/{self.team_id}/channels",
            "/users/{user_id}/teams/{team_id}/channels",
        )
        self.api(
            "GET",
            f"/users/me/teams/{self.team_id}/channels/members",
            "/users/{user_id}/teams/{team_id}/channels/members",
        )
        if isinstance(chans, list):
            self.channels = [c for c in chans if c.get("type") in ("O", "P")] or chans

    def connect_websocket(self) -> None:
        """Open the WebSocket like the web client (failures are retried with its backoff)."""
        spec = self.scenario.websocket
        cookie = f"MMAUTHTOKEN={self.token}" if spec.auth == "header" and self.csrf else None
        self.ws = MMWebSocket(
            ws_url(self.host),
            self.token or "",
            self._fire_ws,
            auth=spec.auth,
            ping_interval_s=spec.ping_interval_s,
            backoff=self.plan.backoff(),
            timeout_s=self.scenario.request_timeout_s,
            cookie=cookie,
        )
        if not self.ws.connect():
            self.ws._lost(ConnectionError("first connect failed"))

    def _reconnect_herd(self) -> None:
        """The reconnect herd: the socket drops with the outage; reconnect by the backoff rule."""
        drop_at = self.plan.herd_drop_at or time.time()
        gevent.sleep(max(0.0, drop_at - time.time()))
        if self.ws is not None:
            self.ws.close(code=1006)
        backoff = self.plan.backoff()
        offset = backoff.reconnect_time(self.scenario.herd.outage_s, self.rng)
        scheduled = drop_at + offset
        gevent.sleep(max(0.0, scheduled - time.time()))
        started = time.time()
        self.lag_s = started - scheduled
        row: dict[str, Any] = {
            "user": self.username,
            "scheduled": scheduled,
            "started": started,
            "lag_ms": self.lag_s * 1000,
            "outcome": "pending",
            "phase": "reconnect",
        }
        try:
            ok = self.ws is not None and self.ws.connect({"page_load_context": "reconnect"})
            if ok:
                row["ws_connected"] = time.time()
            self.reconnect_reload()
            row["loaded"] = time.time()
            row["outcome"] = "loaded" if ok else "failed"
            if not ok:
                row["error"] = "websocket reconnect failed"
                self.ws._lost(ConnectionError("reconnect failed"))  # type: ignore[union-attr]
        finally:
            self.lag_s = None
            self._add_arrival(row)

    def reconnect_reload(self) -> None:
        """What the web app fetches after its socket reconnects (page-load context reconnect)."""
        self.page_load_context = "reconnect"
        try:
            self.api("GET", "/users/me/teams/unread", "/users/me/teams/unread")
            self.load_team()
            if self.channel_id:
                self._posts_since(self.channel_id)
        finally:
            self.page_load_context = None

    # ---- channel helpers -----------------------------------------------------------------
    def _pick_channel(self, default_first: bool = False) -> str:
        if default_first:
            for c in self.channels:
                if c.get("name") == "town-square":
                    return c["id"]
            return self.channels[0]["id"]
        others = [c["id"] for c in self.channels if c["id"] != self.channel_id]
        return self.rng.choice(others or [c["id"] for c in self.channels])

    def _remember_posts(self, channel_id: str, body: Any) -> list[str]:
        if not isinstance(body, dict):
            return []
        order = body.get("order") or []
        posts = body.get("posts") or {}
        if order:
            self.oldest_post[channel_id] = order[-1]
            self.post_ids = (order[:20] + self.post_ids)[:200]
            roots = [p for p in order if not (posts.get(p) or {}).get("root_id")]
            self.roots[channel_id] = (roots[:20] + self.roots.get(channel_id, []))[:50]
        authors = list({p.get("user_id") for p in posts.values() if isinstance(p, dict)} - {None})
        new = [a for a in authors if a not in self.known_users]
        self.known_users = (new + self.known_users)[:100]
        return authors

    def _posts_since(self, channel_id: str) -> list[str]:
        since = self.viewed.get(channel_id)
        if since:
            body = self.get_json(
                f"/channels/{channel_id}/posts?since={since}&skipFetchThreads=false"
                "&collapsedThreads=true&collapsedThreadsExtended=false",
                "/channels/{channel_id}/posts",
            )
        else:
            body = self.get_json(
                f"/channels/{channel_id}/posts?page=0&per_page=30&skipFetchThreads=false"
                "&collapsedThreads=true&collapsedThreadsExtended=false",
                "/channels/{channel_id}/posts",
            )
        return self._remember_posts(channel_id, body)

    def view_channel(self, channel_id: str) -> None:
        """Posts (since the last view), the posters' statuses, channel stats, mark viewed."""
        before = set(self.known_users)
        authors = self._posts_since(channel_id)
        if authors:
            self.api("POST", "/users/status/ids", "/users/status/ids", json=authors[:50])
            missing = [a for a in authors if a not in before]
            if missing:
                self.api("POST", "/users/ids", "/users/ids", json=missing[:50])
        self.api(
            "GET",
            f"/channels/{channel_id}/stats?exclude_files_count=true",
            "/channels/{channel_id}/stats",
        )
        self.api(
            "POST",
            "/channels/members/me/view",
            "/channels/members/{user_id}/view",
            json={
                "channel_id": channel_id,
                "prev_channel_id": self.channel_id or "",
                "collapsed_threads_supported": True,
            },
        )
        self.viewed[channel_id] = int(time.time() * 1000)
        self.channel_id = channel_id

    # ---- actions (handlers named in actions.yaml) -----------------------------------------
    def switch_channel(self) -> None:
        """SwitchChannel: view another channel of the current team."""
        if self.channels:
            self.view_channel(self._pick_channel())

    def scroll_channel(self) -> None:
        """ScrollChannel: load older posts of the current channel."""
        if not self.channel_id:
            return self.switch_channel()
        before = self.oldest_post.get(self.channel_id)
        path = f"/channels/{self.channel_id}/posts?page=0&per_page=30"
        if before:
            path += f"&before={before}"
        self._remember_posts(self.channel_id, self.get_json(path, "/channels/{channel_id}/posts"))

    def unread_check(self) -> None:
        """UnreadCheck: the unread counts of the user's teams."""
        self.api("GET", "/users/me/teams/unread", "/users/me/teams/unread")

    def create_post(self) -> None:
        """CreatePost: a message in the current channel; 18 % are replies (load-test-ng)."""
        if not self.channel_id:
            return self.switch_channel()
        body: dict[str, Any] = {
            "channel_id": self.channel_id,
            "message": _sentence(self.rng),
            "pending_post_id": f"{self.user_id}:{int(time.time() * 1000)}",
        }
        roots = self.roots.get(self.channel_id)
        if roots and self.rng.random() < 0.18:
            body["root_id"] = self.rng.choice(roots)
        resp = self.api("POST", "/posts", "/posts", json=body)
        post = _json_or_none(resp)
        if isinstance(post, dict) and post.get("id"):
            self.post_ids.insert(0, post["id"])
            del self.post_ids[200:]
            if not post.get("root_id"):
                self.roots.setdefault(self.channel_id, []).insert(0, post["id"])

    def _other_user_id(self) -> str | None:
        """Someone this user has seen (a post author), not the user itself."""
        others = [u for u in self.known_users if u != self.user_id]
        return self.rng.choice(others) if others else None

    def open_direct_channel(self) -> None:
        """OpenDirectOrGroupChannel: open a DM with someone and read it."""
        other = self._other_user_id()
        if not other or other == self.user_id:
            return
        ch = _json_or_none(
            self.api("POST", "/channels/direct", "/channels/direct", json=[self.user_id, other])
        )
        if isinstance(ch, dict) and ch.get("id"):
            self.view_channel(ch["id"])

    def create_direct_channel(self) -> None:
        """CreateDirectChannel: create (or get) a DM channel."""
        other = self._other_user_id()
        if other and other != self.user_id:
            self.api("POST", "/channels/direct", "/channels/direct", json=[self.user_id, other])

    def view_global_threads(self) -> None:
        """ViewGlobalThreads: the user's followed threads in the current team."""
        self.api(
            "GET",
            f"/users/{self.user_id}/teams/{self.team_id}/threads?per_page=25&extended=false",
            "/users/{user_id}/teams/{team_id}/threads",
        )

    def view_thread(self) -> None:
        """ViewThread: open a thread of a recent post."""
        if self.post_ids:
            post = self.rng.choice(self.post_ids)
            self.api("GET", f"/posts/{post}/thread", "/posts/{post_id}/thread")

    def click_permalink(self) -> None:
        """ClickPermalink: the post's thread, then its channel and membership."""
        if not self.post_ids or not self.channel_id:
            return self.view_thread()
        post = self.rng.choice(self.post_ids)
        self.api("GET", f"/posts/{post}/thread", "/posts/{post_id}/thread")
        self.api("GET", f"/channels/{self.channel_id}", "/channels/{channel_id}")
        self.api(
            "GET", f"/channels/{self.channel_id}/members/me", "/channels/{channel_id}/members/me"
        )

    def add_reaction(self) -> None:
        """AddReaction: react to a recent post."""
        if self.post_ids:
            self.api(
                "POST",
                "/reactions",
                "/reactions",
                json={
                    "user_id": self.user_id,
                    "post_id": self.rng.choice(self.post_ids),
                    "emoji_name": self.rng.choice(["+1", "smile", "tada", "eyes"]),
                },
            )

    def search_users(self) -> None:
        """SearchUsers: the user search of the web app."""
        term = self.plan.username(self.rng.randrange(self.scenario.population.size))[:6]
        self.api(
            "POST", "/users/search", "/users/search", json={"term": term, "team_id": self.team_id}
        )

    def click_user_profile(self) -> None:
        """ClickUserProfile: someone's profile and status."""
        other = self._other_user_id()
        if other:
            self.api("GET", f"/users/{other}", "/users/{user_id}")
            self.api("POST", "/users/status/ids", "/users/status/ids", json=[other])

    def search_posts(self) -> None:
        """SearchPosts: a message search in the current team."""
        self.api(
            "POST",
            f"/teams/{self.team_id}/posts/search",
            "/teams/{team_id}/posts/search",
            json={
                "terms": self.rng.choice(_WORDS),
                "is_or_search": False,
                "page": 0,
                "per_page": 20,
            },
        )

    def search_channels(self) -> None:
        """SearchChannels: find channels by name in the current team."""
        self.api(
            "POST",
            f"/teams/{self.team_id}/channels/search",
            "/teams/{team_id}/channels/search",
            json={"term": self.rng.choice(["town", "off", "chan", "a"])},
        )

    def reconnect_websocket(self) -> None:
        """ReconnectWebSocket: drop the socket and reconnect (the web app's reconnect reload)."""
        if self.ws is None:
            return
        self.ws.close()
        if not self.ws.connect({"page_load_context": "reconnect"}):
            self.ws._lost(ConnectionError("reconnect failed"))
        self.reconnect_reload()

    def full_reload(self) -> None:
        """FullReload: the page reload: initial load again and a new WebSocket."""
        if self.ws is not None:
            self.ws.close()
        self.api("GET", "/config/client?format=old", "/config/client")
        self.api("GET", "/license/client?format=old", "/license/client")
        with contextlib.suppress(LoginFailed):
            self.initial_load()
        if self.scenario.websocket.enabled:
            self.connect_websocket()


_WORDS = ["release", "deploy", "meeting", "incident", "review", "lunch", "build", "ticket"]


def _sentence(rng: random.Random) -> str:
    n = rng.randint(1, 34)
    return " ".join(rng.choice(_WORDS) for _ in range(n)) + f" {uuid.uuid4().hex[:6]}"


def _json_or_none(resp: Any) -> Any:
    try:
        if not resp.status_code or resp.status_code >= 400:
            return None
        return resp.json()
    except Exception:
        return None


def _error_message(resp: Any) -> str:
    status = resp.status_code or 0
    if not status:
        err = getattr(resp, "error", None)
        return f"no response: {err}" if err else "no response"
    try:
        body = resp.json()
        if isinstance(body, dict) and body.get("id"):
            return f"HTTP {status} {body['id']}"
    except Exception:
        pass
    text = (resp.text or "").strip().splitlines()
    return f"HTTP {status} {text[0][:80]}" if text else f"HTTP {status}"


def _cookie(resp: Any, name: str) -> str | None:
    """A cookie set by the response's Set-Cookie headers (geventhttpclient gives a list)."""
    raw = resp.headers.get("set-cookie") if resp.headers is not None else None
    values = raw if isinstance(raw, list) else [raw] if raw else []
    for v in values:
        first = v.split(";", 1)[0].strip()
        if first.startswith(name + "="):
            return first.split("=", 1)[1]
    return None
