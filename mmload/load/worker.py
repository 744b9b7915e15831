"""A worker process (``mmload worker``): runs users for a master, ships their record to it.

The master sends the plan (a custom message, with the target's pinned addresses); the worker
attaches the run context to its environment, collects its users' requests and arrivals, and
sends them as batches to the master every ``flush_s``. When the test stops it flushes once more
and says it is done.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment

from mmload.errors import RunFailed
from mmload.load.collector import Collector
from mmload.load.context import RunContext, attach
from mmload.load.pin import PINNED
from mmload.load.plan import BATCH_MESSAGE, DONE_MESSAGE, FAILED_MESSAGE, PLAN_MESSAGE, Plan
from mmload.load.population import default_path, read_population
from mmload.load.preflight import load_user_classes, raise_open_files_limit

TARGETS_ENV = "MMLOAD_TARGETS"  # comma-separated: the deployment's proxies (agents role)


def spread_host(host: str | None, targets: list[str], index: int) -> str | None:
    """The host this worker sends to: with several proxies (``MMLOAD_TARGETS`` on a load
    agent) and the master's target one of them, worker ``index`` takes proxy ``index % n``, so
    every proxy carries load; any other target is kept as the master gave it."""
    if not host or len(targets) < 2 or host.rstrip("/") not in targets:
        return host
    return targets[index % len(targets)]


class AgentEnvironment(Environment):
    """Locust's environment whose ``host`` (set from every spawn message) is spread over the
    deployment's proxies by the worker's index (``spread_host``)."""

    targets: list[str] = []

    @property
    def host(self) -> str | None:
        return self._host

    @host.setter
    def host(self, value: str | None) -> None:
        runner = getattr(self, "runner", None)
        index = getattr(runner, "worker_index", 0) or 0
        self._host = spread_host(value, self.targets, index)


class WorkerSide:
    """The master-facing half of a worker: plan in, batches and ``done`` out. The plan's
    population comes from this worker's own file (``population``), never from the master."""

    def __init__(
        self, env: Any, runner: Any, population: Path, sources: tuple[str, ...] = ()
    ) -> None:
        self.env = env
        self.runner = runner
        self.population = population
        self.sources = sources  # this agent's own source addresses (replace the plan's)
        self.collector: Collector | None = None
        self.failed: str | None = None
        runner.register_message(PLAN_MESSAGE, self.on_plan)
        env.events.test_stop.add_listener(self.on_test_stop)

    def on_plan(self, msg: Any, **_: Any) -> None:
        """Take the master's plan with this worker's population: attach the run context and
        start collecting. Without a usable population file the worker quits (one line)."""
        try:
            plan = Plan.from_message(msg.data)
            plan = plan.with_population(read_population(self.population), str(self.population))
        except RunFailed as exc:
            self.failed = str(exc)
            self.runner.send_message(FAILED_MESSAGE, {"error": self.failed})
            gevent.spawn(self.runner.quit)  # not from inside the runner's own greenlet
            return
        PINNED.install(plan.pins)  # the master's resolution of the target, before users spawn
        if self.sources:
            plan = dataclasses.replace(plan, sources=list(self.sources))
        self.collector = Collector(self.env, plan.worker_name, self.send_batch, plan.flush_s)
        attach(self.env, RunContext(plan, self.collector))
        self.collector.start()

    def send_batch(self, batch: dict[str, Any]) -> None:
        self.runner.send_message(BATCH_MESSAGE, batch)

    def on_test_stop(self, **_: Any) -> None:
        """The users stopped: the last batch, then ``done``."""
        if self.collector is not None:
            self.collector.stop()
            self.runner.send_message(DONE_MESSAGE, {"worker": self.collector.worker})


def run_worker(
    master_host: str,
    master_port: int,
    locustfile: str | None = None,
    with_parent: bool = False,
    population: str | None = None,
    *,
    sources: tuple[str, ...] = (),
) -> None:
    """A worker process: connect to the master, take its plan, run users, ship batches.

    ``with_parent``: a local worker quits as soon as its master process is gone (e.g. SIGKILL),
    instead of waiting for Locust's heartbeat timeout. ``population``: the population file
    (default: :func:`~mmload.load.population.default_path`). ``sources``: this agent's own
    local addresses its users send from (round robin by user index), instead of the plan's.
    """
    classes = load_user_classes(locustfile)
    raise_open_files_limit(0)
    env = AgentEnvironment(user_classes=classes, events=events)
    env.targets = [t.strip().rstrip("/") for t in os.environ.get(TARGETS_ENV, "").split(",") if t]
    runner = env.create_worker_runner(master_host, master_port)
    pop = Path(population).expanduser() if population else default_path()
    side = WorkerSide(env, runner, pop, sources)
    for sig in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(sig, runner.quit)
    if with_parent:
        parent = os.getppid()

        def watch_parent() -> None:
            while os.getppid() == parent:
                gevent.sleep(1.0)
            runner.quit()

        gevent.spawn(watch_parent)
    runner.greenlet.join()
    if side.failed:
        raise RunFailed(side.failed)
