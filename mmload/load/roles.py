"""Where a run's users run, by role (as Locust's runners are): here, or on workers.

- :class:`LocalRole`: one process — Locust's LocalRunner; the users' collector writes straight
  into the run record.
- :class:`MasterRole`: Locust's MasterRunner here, users on ``mmload worker`` processes (local
  ones it starts, remote agents it waits for); each worker gets its plan in a custom message and
  ships its batches back. The plan has no password: local workers read the population from a
  0600 file in a private temporary folder (remote ones from their own).

The runner talks to either through the same calls: ``connect`` (until every worker is ready),
``distribute`` (the plans, once the start time is fixed), ``set_users``, ``watch``,
``stop_users`` (until every process has flushed) and ``quit``.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import gevent
from locust.rpc import Message

from mmload.config.scenario import RunOptions, Scenario
from mmload.errors import RunFailed
from mmload.load.clock import Clock
from mmload.load.collector import Collector
from mmload.load.context import RunContext, StopFlag, attach
from mmload.load.local_workers import LocalWorkers, wait_ready
from mmload.load.plan import BATCH_MESSAGE, DONE_MESSAGE, FAILED_MESSAGE, PLAN_MESSAGE, Plan
from mmload.load.population import write_population
from mmload.load.recorder import RecordWriter
from mmload.net import free_port

LEAD_S = 1.0  # the first arrival is scheduled this long after the plans are out
STOP_TIMEOUT_S = 15.0  # how long stopping waits for every process's last batch
STOP_POLL_S = 0.2


class Role(Protocol):
    """What the runner needs of a role (see the module docstring)."""

    processes: int  # processes that run users (1 for a local run)
    lead_s: float
    runner: Any  # Locust's runner, once connected

    def connect(self, env: Any, writer: RecordWriter, stop: StopFlag, clock: Clock) -> bool: ...
    def distribute(self, scenario: Scenario, t0: float) -> None: ...
    def set_users(self, count: int, spawn_rate: float) -> None: ...
    def watch(self) -> None: ...
    def stop_users(self, clock: Clock) -> None: ...
    def quit(self) -> None: ...


class LocalRole:
    """Users in this process."""

    processes = 1
    lead_s = LEAD_S

    def __init__(self) -> None:
        self.runner: Any = None
        self.collector: Collector | None = None

    def connect(self, env: Any, writer: RecordWriter, stop: StopFlag, clock: Clock) -> bool:
        self.env, self.writer, self.stop = env, writer, stop
        self.runner = env.create_local_runner()
        return True

    def distribute(self, scenario: Scenario, t0: float) -> None:
        plan = Plan.for_process(scenario, t0, 1, 0, "local")
        fail = self.writer.fail
        self.collector = Collector(
            self.env, "local", self.writer.ingest, plan.flush_s, on_error=fail
        )
        attach(self.env, RunContext(plan, self.collector, self.stop))
        self.collector.start()

    def set_users(self, count: int, spawn_rate: float) -> None:
        self.runner.start(count, spawn_rate)

    def watch(self) -> None:
        """Nothing to watch: the users run in this process."""

    def stop_users(self, clock: Clock) -> None:
        with contextlib.suppress(Exception):
            self.runner.stop()
        if self.collector is not None:
            self.collector.stop()

    def quit(self) -> None:
        if self.runner is not None:
            with contextlib.suppress(Exception):
                self.runner.quit()


class MasterRole:
    """Users on worker processes: ``local`` ones started here, ``remote`` agents awaited."""

    lead_s = LEAD_S + 1.0  # the plans travel to the workers first

    def __init__(
        self,
        bind: str,
        port: int,
        local: LocalWorkers,
        remote: int = 0,
        ready_timeout_s: float = 120.0,
        announce: Callable[[str, int], None] | None = None,
    ):
        self.bind, self.port = bind, port
        self.local, self.remote = local, remote
        self.processes = local.count + remote
        self.ready_timeout_s = ready_timeout_s
        self.announce = announce
        self.runner: Any = None
        self.done: set[str] = set()  # workers whose collector has flushed for good
        self._dispatch: gevent.Greenlet | None = None
        self._dispatch_error: str | None = None
        self.population: Path | None = None  # the local workers' population file

    def connect(self, env: Any, writer: RecordWriter, stop: StopFlag, clock: Clock) -> bool:
        port = self.port or free_port(self.bind)
        self.runner = env.create_master_runner(self.bind, port)
        self.runner.register_message(BATCH_MESSAGE, lambda msg, **_: writer.ingest(msg.data))
        self.runner.register_message(
            DONE_MESSAGE, lambda msg, **_: self.done.add(msg.data["worker"])
        )
        self.runner.register_message(  # e.g. no population file: the run fails with its line
            FAILED_MESSAGE, lambda msg, **_: stop.set(f"a worker: {msg.data['error']}", "failed")
        )
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "*") else self.bind
        if self.local.count:  # written by distribute(), read by the workers on their plan
            self.population = Path(tempfile.mkdtemp(prefix="mmload-")) / "population.json"
        self.local.spawn(host, port, writer.run_dir, self.population)
        if self.remote and self.announce:
            self.announce(f"{self.bind}:{port}", self.remote)
        return wait_ready(
            lambda: len(self.runner.clients.ready),
            self.processes,
            self.ready_timeout_s,
            stop,
            self.local.check,
            clock,
        )

    def distribute(self, scenario: Scenario, t0: float) -> None:
        if self.population is not None:
            write_population(self.population, scenario.population)
        for i, client_id in enumerate(sorted(self.runner.clients.keys())):
            plan = Plan.for_process(scenario, t0, self.processes, i, f"w{i}")
            self.runner.send_message(PLAN_MESSAGE, plan.to_message(), client_id=client_id)

    def set_users(self, count: int, spawn_rate: float) -> None:
        """Locust's master hands the users out over ``count / spawn_rate`` seconds inside its
        ``start``: run that in its own greenlet (as Locust's web UI does), so that the phases
        keep ticking and a Ctrl-C stops the run at once, not after the dispatch."""
        self._stop_dispatch()
        self._dispatch = gevent.spawn(self._start_users, count, spawn_rate)

    def _start_users(self, count: int, spawn_rate: float) -> None:
        try:
            self.runner.start(count, spawn_rate)
        except Exception as exc:
            self._dispatch_error = f"{type(exc).__name__}: {exc}"

    def _stop_dispatch(self) -> None:
        if self._dispatch is not None:
            self._dispatch.kill(block=True)
            self._dispatch = None

    def watch(self) -> None:
        if self._dispatch_error:
            raise RunFailed(f"handing out the users failed: {self._dispatch_error}")
        self.local.check()

    def stop_users(self, clock: Clock) -> None:
        """Stop the users; wait until every worker has sent its last batch (or is gone).

        The workers get Locust's ``stop`` message here and the wait is this role's own (polled
        every STOP_POLL_S, at most STOP_TIMEOUT_S): Locust's ``MasterRunner.stop`` would poll
        the workers' user counts once a second, for up to a minute."""
        if self.runner is None:
            return
        self._stop_dispatch()
        with contextlib.suppress(Exception):  # STOPPING before any worker stops: Locust's master
            self.runner.stop(send_stop_to_client=False)  # would hand a stopped one's users on
        with contextlib.suppress(Exception):
            for client in self.runner.clients.all:
                self.runner.server.send_to_client(Message("stop", None, client.id))
        deadline = clock.time() + STOP_TIMEOUT_S
        while len(self.done) < self.processes and clock.time() < deadline:
            if not self.remote and self.local.all_exited():
                break
            clock.sleep(STOP_POLL_S)

    def quit(self) -> None:
        if self.runner is not None:
            with contextlib.suppress(Exception):
                self.runner.quit()
        self.local.stop()
        if self.population is not None:
            shutil.rmtree(self.population.parent, ignore_errors=True)


def role_for(
    opts: RunOptions,
    locustfile: str | None,
    announce_master: Callable[[str, int], None] | None = None,
) -> Role:
    """Local for ``--workers 0`` without remote workers, else a master."""
    if not (opts.workers or opts.remote_workers):
        return LocalRole()
    return MasterRole(
        opts.master_bind,
        opts.master_port,
        LocalWorkers(opts.workers, locustfile),
        opts.remote_workers,
        opts.expect_workers_timeout_s,
        announce_master,
    )
