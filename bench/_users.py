"""Locust users for the benchmarks, and a way to run them in-process with Locust's LocalRunner.

Importing this module imports Locust (which monkey-patches with gevent): only benchmark child
processes import it, never the parent that manages processes.
"""

from __future__ import annotations

import itertools
import time

import _common as common
import gevent
import psutil
from locust import FastHttpUser, constant, task
from locust.env import Environment

ME = "/api/v4/users/me"
READY_TIMEOUT_S = 180.0  # every user must have finished its login flow by then


class BareUser(FastHttpUser):
    """The fairest Locust baseline: a FastHttpUser with a fixed ``Authorization: Bearer`` header
    and no cookie jar (geventhttpclient's jar costs per request). One login POST for the token,
    then the cheap endpoint as fast as it can."""

    abstract = True
    wait_time = constant(0)
    user_numbers: itertools.count = itertools.count()
    cookie_jar = False  # JarBareUser keeps Locust's default jar

    def on_start(self) -> None:
        if not self.cookie_jar:
            self.client.client.cookiejar = None  # geventhttpclient: no jar, no Cookie handling
        username = common.sim_username(next(self.user_numbers))
        with self.client.post(
            "/api/v4/users/login",
            json={"login_id": username, "password": common.SIM_PASSWORD},
            name="POST /api/v4/users/login",
            catch_response=True,
        ) as response:
            token = response.headers.get("Token")
            if response.status_code != 200 or not token:
                response.failure(f"login failed: {response.status_code}")
                token = ""
        self.auth = {"Authorization": f"Bearer {token}"}
        self.ready = True

    @task
    def me(self) -> None:
        self.client.get(ME, headers=self.auth, name=f"GET {ME}")


class JarBareUser(BareUser):
    """The bare user with Locust's default cookie jar left on (the baseline before 2026-12).

    Only for the breakdown: the jar's cost on a bearer-token client that receives no cookies.
    """

    abstract = True
    cookie_jar = True


class CookieBareUser(BareUser):
    """The bare user, authenticated like the web app: login with X-Requested-With, then cookies.

    Only for the generator benchmark's breakdown: it isolates the cost of cookie authentication
    through the jar.
    """

    abstract = True
    cookie_jar = True

    def on_start(self) -> None:
        self.client.post(
            "/api/v4/users/login",
            json={
                "login_id": common.sim_username(next(self.user_numbers)),
                "password": common.SIM_PASSWORD,
            },
            headers={"X-Requested-With": "XMLHttpRequest"},
            name="POST /api/v4/users/login",
        )
        self.auth = {"X-Requested-With": "XMLHttpRequest"}
        self.ready = True


def generator_setup(kind: str, host: str, first_user: int, users: int, workdir: str):
    """The user class of `kind` and its env setup (None for the bare users).

    The MattermostUser runs as under `mmload run`: with an mmload plan and mmload's recorder
    (every request becomes a row and an HDR sample, written as parquet parts every 2 s).
    """
    bare = {"bare": BareUser, "bare-jar": JarBareUser, "bare-cookies": CookieBareUser}
    if kind in bare:
        base = bare[kind]
        numbers = itertools.count(first_user)
        return type("BareBenchUser", (base,), {"host": host, "user_numbers": numbers}), None

    def setup(env: Environment) -> None:
        attach_plan(env, bench_plan("bench-generator", users, ping_s=30.0, first_user=first_user))
        if kind == "mattermost":  # "mattermost-norecord": the same user without mmload's recorder
            attach_recorder(env, workdir, "bench")

    return mattermost_me_class(host), setup


def bench_plan(
    name: str,
    users: int,
    ping_s: float,
    first_user: int = 0,
    worker: str = "bench",
    actions: bool = False,
    idle_ms: tuple[int, int] = (1000, 20_000),
):
    """An mmload plan: no schedule (users log in as they spawn), WebSocket on; the action mix
    (with idle ``(min_ms, avg_ms)``) only when asked."""
    from mmload.config.scenario import Idle, Population, Scenario, WebSocketSpec
    from mmload.load.plan import Plan

    scenario = Scenario(
        name=name,
        kind="steady",
        users=users,
        arrival_s=0,
        actions=actions,
        idle=Idle(min_ms=idle_ms[0], avg_ms=idle_ms[1]),
        websocket=WebSocketSpec(ping_interval_s=ping_s),
        population=Population(first_user=first_user + 1),
    )
    return Plan(scenario=scenario, worker_name=worker)


def attach_plan(env: Environment, plan) -> None:
    """Give the environment's users their plan, as `mmload run` does (the run context)."""
    from mmload.load.context import RunContext, attach

    attach(env, RunContext(plan))


def attach_recorder(env: Environment, workdir: str, worker: str):
    """mmload's own recorder, as a local `mmload run` has it: Collector -> RecordWriter."""
    from pathlib import Path

    from mmload import record
    from mmload.load.collector import Collector
    from mmload.load.context import run_context
    from mmload.load.recorder import RecordWriter

    run_dir = record.new_run_dir(Path(workdir) / worker, "bench")
    writer = RecordWriter(run_dir, {"schema": "mmload.run/1", "outcome": "running"})
    collector = Collector(env, worker, writer.ingest, flush_s=2.0)
    run_context(env).collector = collector
    collector.start()
    return collector, Path(run_dir)


def me_loop(user) -> None:
    """The generator benchmark's task: the cheap authenticated call, through MattermostUser.api."""
    if user.logged_in:
        user.api("GET", "/users/me", "/users/me")
    else:
        gevent.sleep(1)


def mattermost_me_class(host: str) -> type:
    """mmload's MattermostUser, logged in like the web app, then looping on `users/me`."""
    from mmload.load.user import MattermostUser  # the load engine under test

    def on_start(self) -> None:
        MattermostUser.on_start(self)  # the web app's login, initial load and WebSocket
        self.ready = True

    user_class = type("MattermostMeUser", (MattermostUser,), {"host": host, "on_start": on_start})
    user_class.tasks = [me_loop]  # replace (not extend) the inherited action-mix task
    return user_class


def wait_until_ready(runner, users: int, timeout_s: float = READY_TIMEOUT_S) -> int:
    """Wait until every spawned user has finished its login flow; returns how many have."""
    deadline = time.monotonic() + timeout_s
    while True:
        ready = sum(1 for g in runner.user_greenlets for u in _greenlet_user(g, "ready"))
        if ready >= users or time.monotonic() > deadline:
            return ready
        gevent.sleep(0.2)


def measure_local_runner(
    user_class: type, setup, users: int, warmup: float, seconds: float, endpoint_name: str
) -> dict:
    """Spawn `users` at once; once every one has logged in, wait `warmup`; then count
    `endpoint_name` requests for `seconds` (the login flows are not part of the measure)."""
    env = Environment(user_classes=[user_class], host=user_class.host)
    if setup is not None:
        setup(env)
    runner = env.create_local_runner()
    started = time.monotonic()
    runner.start(users, spawn_rate=users)
    ready = wait_until_ready(runner, users)
    ready_s = time.monotonic() - started
    if ready < users:
        runner.quit()
        raise RuntimeError(
            f"only {ready} of {users} users logged in within {READY_TIMEOUT_S:.0f} s"
        )
    gevent.sleep(warmup)
    me = psutil.Process()
    env.stats.reset_all()
    cpu_before, wall_before = sum(me.cpu_times()[:2]), time.monotonic()
    gevent.sleep(seconds)
    entry = env.stats.get(endpoint_name, endpoint_name.split()[0])
    requests, failures = entry.num_requests, entry.num_failures
    cpu = sum(me.cpu_times()[:2]) - cpu_before
    wall = time.monotonic() - wall_before
    total_failures = env.stats.total.num_failures
    runner.quit()
    return {
        "requests": requests,
        "failures": failures,
        "other_failures": total_failures - failures,
        "seconds": round(wall, 3),
        "rps": requests / wall,
        "cpu_seconds": round(cpu, 3),
        "cpu_utilisation": cpu / wall,
        "rps_per_cpu_second": requests / cpu if cpu > 0 else 0.0,
        "login_s": round(ready_s, 3),
        "errors": {str(k): v.occurrences for k, v in list(env.stats.errors.items())[:5]},
    }


# --------------------------------------------------------------------------- capacity worker
class CapacityCounters:
    """What a capacity worker reports: connections, pings and failures, from Locust's events."""

    def __init__(self) -> None:
        self.pings_ok = 0
        self.pings_failed = 0
        self.login_failures = 0
        self.other_failures = 0
        self.http_ok = 0
        self.http_failed_in_hold = 0
        self.failure_kinds: dict[str, int] = {}
        self.hold_started = False
        self.pinged_users_in_hold: set[str] = set()
        self.http_users_in_hold: set[str] = set()  # users with a successful HTTP request

    def on_request(self, name: str, exception=None, context=None, **_) -> None:
        from mmload.load.ws import CONNECT_NAME, PING_NAME

        if name == PING_NAME:
            if exception is None:
                self.pings_ok += 1
                if self.hold_started:
                    self.pinged_users_in_hold.add((context or {}).get("user"))
            else:
                self.pings_failed += 1
            return
        if name != CONNECT_NAME:
            if exception is None:
                self.http_ok += 1
                if self.hold_started:
                    self.http_users_in_hold.add((context or {}).get("user"))
            elif self.hold_started:
                self.http_failed_in_hold += 1
        if exception is not None:
            if name.endswith("/users/login"):
                self.login_failures += 1
            else:
                self.other_failures += 1
            key = f"{name}: {str(exception).splitlines()[0][:80] if str(exception) else ''}"
            self.failure_kinds[key] = self.failure_kinds.get(key, 0) + 1

    def start_hold(self) -> None:
        self.hold_started = True
        self.pinged_users_in_hold.clear()
        self.http_users_in_hold.clear()


def capacity_classes(hosts: list[str]) -> list[type]:
    """One MattermostUser class per simulator, equal weights: users spread evenly over them."""
    from mmload.load.user import MattermostUser

    classes = []
    for i, host in enumerate(hosts):
        attrs = {"host": host, "weight": 1}
        classes.append(type(f"CapacityUser{i}", (MattermostUser,), attrs))
    return classes


def run_capacity_worker(
    hosts: list[str],
    users: int,
    spawn_rate: float,
    first_user: int,
    ping_s: float,
    worker: str,
    workdir: str,
    actions: bool = False,
    idle_ms: tuple[int, int] = (1000, 20_000),
) -> None:
    """Spawn `users` MattermostUsers (the action mix if asked), print counters as JSON every
    2 s, forever.

    SIGUSR1 starts the hold: from then on, users whose ping succeeds are counted. The parent
    stops this process (SIGTERM/SIGKILL to its process group) when it has measured enough.
    """
    import json
    import signal

    classes = capacity_classes(hosts)
    env = Environment(user_classes=classes)
    plan = bench_plan("bench-capacity", users, ping_s, first_user, worker, actions, idle_ms)
    attach_plan(env, plan)
    counters = CapacityCounters()
    env.events.request.add_listener(counters.on_request)
    attach_recorder(env, workdir, worker)
    signal.signal(signal.SIGUSR1, lambda signum, frame: counters.start_hold())
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=spawn_rate)
    while True:
        gevent.sleep(2)
        instances = [u for g in runner.user_greenlets for u in _greenlet_user(g)]
        status = {
            "worker": worker,
            "spawned": runner.user_count,
            "logged_in": sum(1 for u in instances if u.logged_in),
            "ws_connected": sum(1 for u in instances if u.ws is not None and u.ws.connected),
            "pings_ok": counters.pings_ok,
            "pings_failed": counters.pings_failed,
            "login_failures": counters.login_failures,
            "other_failures": counters.other_failures,
            "pinged_users_in_hold": len(counters.pinged_users_in_hold),
            "http_ok": counters.http_ok,
            "http_failed_in_hold": counters.http_failed_in_hold,
            "http_users_in_hold": len(counters.http_users_in_hold),
            "failure_kinds": counters.failure_kinds,
        }
        print(json.dumps(status), flush=True)


def _greenlet_user(greenlet, flag: str = "logged_in") -> list:
    """The Locust user a user greenlet runs (Locust passes it as the greenlet's first arg), if it
    has the attribute ``flag`` (``logged_in``: any MattermostUser; ``ready``: logged in)."""
    args = getattr(greenlet, "args", ())
    return [args[0]] if args and getattr(args[0], flag, None) is not None else []
