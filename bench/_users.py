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


def bench_user_class(kind: str, host: str, first_user: int) -> type:
    """A concrete user class of `kind` ("bare" or "mattermost") aimed at `host`."""
    numbers = itertools.count(first_user)
    if kind == "bare":
        return type("BareBenchUser", (BareUser,), {"host": host, "user_numbers": numbers})
    return mattermost_me_class(host, numbers)


def mattermost_me_class(host: str, numbers: itertools.count) -> type:
    """mmload's MattermostUser, logged in like the web app, then looping on `users/me`."""
    from mmload.load.user import MattermostUser  # the load engine under test

    raise NotImplementedError(MattermostUser)


def measure_local_runner(
    user_class: type, users: int, warmup: float, seconds: float, endpoint_name: str
) -> dict:
    """Spawn `users` at once, wait `warmup`, then count `endpoint_name` requests for `seconds`."""
    env = Environment(user_classes=[user_class], host=user_class.host)
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
