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


class BareUser(FastHttpUser):
    """A bare Locust FastHttpUser: one login POST, then the cheap endpoint as fast as it can."""

    abstract = True
    wait_time = constant(0)
    user_numbers: itertools.count = itertools.count()

    def on_start(self) -> None:
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

    @task
    def me(self) -> None:
        self.client.get(ME, headers=self.auth, name=f"GET {ME}")


class CookieBareUser(BareUser):
    """The bare user, authenticated like the web app: login with X-Requested-With, then cookies.

    Only for the generator benchmark's breakdown: it isolates the cost of the cookie jar.
    """

    abstract = True

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


def generator_setup(kind: str, host: str, first_user: int, users: int, workdir: str):
    """The user class of `kind` and its env setup (None for the bare users).

    The MattermostUser runs as under `mmload run`: with an mmload plan and mmload's recorder
    (every request becomes a row and an HDR sample, written as parquet parts every 2 s).
    """
    if kind in ("bare", "bare-cookies"):
        base = BareUser if kind == "bare" else CookieBareUser
        numbers = itertools.count(first_user)
        return type("BareBenchUser", (base,), {"host": host, "user_numbers": numbers}), None

    def setup(env: Environment) -> None:
        attach_plan(env, bench_plan("bench-generator", users, ping_s=30.0, first_user=first_user))
        if kind == "mattermost":  # "mattermost-norecord": the same user without mmload's recorder
            attach_recorder(env, workdir, "bench")

    return mattermost_me_class(host), setup


def bench_plan(name: str, users: int, ping_s: float, first_user: int = 0, worker: str = "bench"):
    """An mmload plan: no schedule (users log in as they spawn), no action mix, WebSocket on."""
    from mmload.config.scenario import Population, Scenario, WebSocketSpec
    from mmload.load.plan import Plan

    scenario = Scenario(
        name=name,
        kind="steady",
        users=users,
        arrival_s=0,
        actions=False,
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

    user_class = type("MattermostMeUser", (MattermostUser,), {"host": host})
    user_class.tasks = [me_loop]  # replace (not extend) the inherited action-mix task
    return user_class


def measure_local_runner(
    user_class: type, setup, users: int, warmup: float, seconds: float, endpoint_name: str
) -> dict:
    """Spawn `users` at once, wait `warmup`, then count `endpoint_name` requests for `seconds`."""
    env = Environment(user_classes=[user_class], host=user_class.host)
    if setup is not None:
        setup(env)
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=users)
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
        self.failure_kinds: dict[str, int] = {}
        self.hold_started = False
        self.pinged_users_in_hold: set[str] = set()

    def on_request(self, name: str, exception=None, context=None, **_) -> None:
        from mmload.load.ws import PING_NAME

        if name == PING_NAME:
            if exception is None:
                self.pings_ok += 1
                if self.hold_started:
                    self.pinged_users_in_hold.add((context or {}).get("user"))
            else:
                self.pings_failed += 1
        elif exception is not None:
            if name.endswith("/users/login"):
                self.login_failures += 1
            else:
                self.other_failures += 1
            key = f"{name}: {str(exception).splitlines()[0][:80] if str(exception) else ''}"
            self.failure_kinds[key] = self.failure_kinds.get(key, 0) + 1

    def start_hold(self) -> None:
        self.hold_started = True
        self.pinged_users_in_hold.clear()


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
) -> None:
    """Spawn `users` MattermostUsers (no action mix), print counters as JSON every 2 s, forever.

    SIGUSR1 starts the hold: from then on, users whose ping succeeds are counted. The parent
    stops this process (SIGTERM/SIGKILL to its process group) when it has measured enough.
    """
    import json
    import signal

    classes = capacity_classes(hosts)
    env = Environment(user_classes=classes)
    attach_plan(env, bench_plan("bench-capacity", users, ping_s, first_user, worker))
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
            "failure_kinds": counters.failure_kinds,
        }
        print(json.dumps(status), flush=True)


def _greenlet_user(greenlet) -> list:
    """The Locust user a user greenlet runs (Locust passes it as the greenlet's first arg)."""
    args = getattr(greenlet, "args", ())
    return [args[0]] if args and hasattr(args[0], "logged_in") else []
