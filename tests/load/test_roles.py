"""The distributed role on virtual time: readiness, plans, and stopping only once every worker
has flushed — against a fake Locust master, and the worker's half against a fake worker runner.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mmload.config.scenario import Population, RunOptions, Scenario
from mmload.errors import RunFailed
from mmload.load.context import StopFlag, run_context
from mmload.load.local_workers import LocalWorkers, wait_ready, worker_command
from mmload.load.plan import BATCH_MESSAGE, DONE_MESSAGE, PLAN_MESSAGE, Plan
from mmload.load.population import write_population
from mmload.load.roles import STOP_TIMEOUT_S, LocalRole, MasterRole, role_for
from tests.load.fakes import FakeClock, import_locust_unpatched

import_locust_unpatched()

from locust.env import Environment  # noqa: E402

from mmload.load.worker import WorkerSide  # noqa: E402  (imports Locust)


class Clients:
    """Locust's worker list as the master sees it: ids, and which are ready."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    @property
    def ready(self) -> list[str]:
        return self.ids

    @property
    def all(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(id=i) for i in self.ids]

    def keys(self) -> list[str]:
        return list(self.ids)


class FakeMaster:
    """The parts of Locust's MasterRunner that MasterRole uses."""

    def __init__(self) -> None:
        self.clients = Clients()
        self.handlers: dict[str, Any] = {}
        self.sent: list[tuple[str, dict, str]] = []
        self.stopped = self.quitted = False
        self.server = SimpleNamespace(send_to_client=lambda msg: self.sent.append(msg))

    def register_message(self, kind: str, fn: Any) -> None:
        self.handlers[kind] = fn

    def send_message(self, kind: str, data: dict, client_id: str) -> None:
        self.sent.append((kind, data, client_id))

    def deliver(self, kind: str, data: dict) -> None:
        self.handlers[kind](SimpleNamespace(data=data))

    def stop(self, send_stop_to_client: bool = True) -> None:
        assert not send_stop_to_client  # the role sends the stop and waits itself
        self.stopped = True

    def quit(self) -> None:
        self.quitted = True


class FakeEnv:
    def __init__(self) -> None:
        self.master = FakeMaster()
        self.bound: tuple[str, int] | None = None

    def create_master_runner(self, bind: str, port: int) -> FakeMaster:
        self.bound = (bind, port)
        return self.master


def _connected_master(clock: FakeClock, tmp_path: Path, remote: int = 2):
    env = FakeEnv()
    clients = env.master.clients
    batches: list[dict] = []
    writer = SimpleNamespace(ingest=batches.append, run_dir=tmp_path)
    announced: list[tuple[str, int]] = []
    role = MasterRole(
        "127.0.0.1", 5557, LocalWorkers(0), remote, 30.0, lambda a, n: announced.append((a, n))
    )
    clock.at(clock.now + 1.0, lambda: clients.ids.append("agent-b"))
    clock.at(clock.now + 2.5, lambda: clients.ids.append("agent-a"))
    assert role.connect(env, writer, StopFlag(), clock)  # type: ignore[arg-type]
    return role, env, clients, batches, announced


def test_master_waits_for_every_worker_then_sends_each_its_plan(tmp_path: Path) -> None:
    clock = FakeClock()
    role, env, _clients, batches, announced = _connected_master(clock, tmp_path)
    assert env.bound == ("127.0.0.1", 5557) and announced == [("127.0.0.1:5557", 2)]
    assert 2.5 <= clock.elapsed <= 2.5 + 0.2  # ready as soon as the second agent is
    scenario = Scenario(name="s", kind="storm", users=10, arrival_s=5, rate_cap=40)
    t0 = clock.now + role.lead_s
    role.distribute(scenario, t0)
    plans = [(Plan.from_message(data), cid) for kind, data, cid in env.master.sent]
    assert all(kind == PLAN_MESSAGE for kind, _, _ in env.master.sent)
    # sorted client ids get indexes 0, 1; both cover the same schedule at half the rate cap
    assert [(p.worker_index, p.worker_name, cid) for p, cid in plans] == [
        (0, "w0", "agent-a"),
        (1, "w1", "agent-b"),
    ]
    assert {(p.workers, p.t0, p.schedule_users, p.rate_cap) for p, _ in plans} == {
        (2, t0, 10, 20.0)
    }
    env.master.deliver(BATCH_MESSAGE, {"worker": "w0"})
    assert batches == [{"worker": "w0"}]  # batches go straight to the record writer


def test_master_stops_once_every_worker_has_flushed(tmp_path: Path) -> None:
    clock = FakeClock()
    role, env, *_ = _connected_master(clock, tmp_path)
    start = clock.elapsed
    clock.at(clock.now + 1.0, lambda: env.master.deliver(DONE_MESSAGE, {"worker": "w0"}))
    clock.at(clock.now + 3.0, lambda: env.master.deliver(DONE_MESSAGE, {"worker": "w1"}))
    role.stop_users(clock)
    assert env.master.stopped and role.done == {"w0", "w1"}
    stops = [m for m in env.master.sent if getattr(m, "type", None) == "stop"]
    assert sorted(m.node_id for m in stops) == ["agent-a", "agent-b"]  # Locust's stop, to each
    assert 3.0 <= clock.elapsed - start <= 3.0 + 0.2
    role.quit()
    assert env.master.quitted


def test_master_gives_up_on_a_silent_worker_after_the_stop_timeout(tmp_path: Path) -> None:
    clock = FakeClock()
    role, env, *_ = _connected_master(clock, tmp_path)
    start = clock.elapsed
    env.master.deliver(DONE_MESSAGE, {"worker": "w0"})
    role.stop_users(clock)
    assert role.done == {"w0"}
    assert STOP_TIMEOUT_S <= clock.elapsed - start <= STOP_TIMEOUT_S + 0.2


def test_master_does_not_wait_for_local_workers_that_are_gone(tmp_path: Path) -> None:
    clock = FakeClock()
    local = LocalWorkers(2)
    local.procs = [SimpleNamespace(poll=lambda: 0, returncode=0)] * 2  # type: ignore[list-item]
    role = MasterRole("127.0.0.1", 0, local)
    role.runner = FakeMaster()
    role.stop_users(clock)
    assert clock.elapsed == 0.0


def test_stop_before_the_master_exists_returns_at_once() -> None:
    clock = FakeClock()
    role = MasterRole("127.0.0.1", 0, LocalWorkers(0), remote=3)
    role.stop_users(clock)
    role.quit()
    assert clock.elapsed == 0.0


def test_waiting_for_workers_times_out_stops_or_fails() -> None:
    clock = FakeClock()
    with pytest.raises(RunFailed, match="only 1 of 2 workers connected"):
        wait_ready(lambda: 1, 2, 10.0, StopFlag(), clock=clock)
    assert 10.0 <= clock.elapsed <= 10.2
    stop = StopFlag()
    clock.at(clock.now + 1.0, lambda: stop.set("Ctrl-C"))
    assert wait_ready(lambda: 0, 2, 60.0, stop, clock=clock) is False

    def dead() -> None:
        raise RunFailed("a worker process exited (code 1); see its log")

    with pytest.raises(RunFailed, match="exited"):
        wait_ready(lambda: 0, 1, 60.0, StopFlag(), dead, clock)


def test_role_follows_the_worker_flags_and_local_workers_know_their_master() -> None:
    target = "http://127.0.0.1:1"
    assert isinstance(role_for(RunOptions(target=target), None), LocalRole)
    role = role_for(RunOptions(target=target, workers=2, remote_workers=3), "lf.py")
    assert isinstance(role, MasterRole) and role.processes == 5 and role.local.count == 2
    cmd = worker_command("10.0.0.5", 5557, "lf.py")
    assert cmd[-7:] == [
        "--with-parent",
        "--master",
        "10.0.0.5",
        "--master-port",
        "5557",
        "--locustfile",
        "lf.py",
    ]


class FakeWorkerRunner:
    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}
        self.sent: list[tuple[str, dict]] = []

    def register_message(self, kind: str, fn: Any) -> None:
        self.handlers[kind] = fn

    def send_message(self, kind: str, data: dict) -> None:
        self.sent.append((kind, data))


def test_worker_takes_its_plan_then_sends_its_last_batch_before_done(tmp_path: Path) -> None:
    env = Environment()
    runner = FakeWorkerRunner()
    write_population(tmp_path / "population.json", Population())  # the worker's own file
    WorkerSide(env, runner, tmp_path / "population.json")
    plan = Plan(scenario=Scenario(name="s", kind="storm", users=4), worker_name="w1", flush_s=60)
    runner.handlers[PLAN_MESSAGE](SimpleNamespace(data=plan.to_message()))
    ctx = run_context(env)
    assert ctx.plan.worker_name == "w1" and ctx.collector is not None  # the users' context
    env.events.request.fire(
        request_type="GET",
        name="GET /x",
        response_time=3.0,
        response_length=1,
        context={"user": "user-1"},
        start_time=1_800_000_000.0,
        response=SimpleNamespace(status_code=200),
    )
    env.events.test_stop.fire(environment=env)
    kinds = [kind for kind, _ in runner.sent]
    assert kinds[-1] == DONE_MESSAGE and runner.sent[-1][1] == {"worker": "w1"}
    batches = [data for kind, data in runner.sent if kind == BATCH_MESSAGE]
    assert sum(len(b["requests"]["timestamp"]) for b in batches) == 1
    assert all(b["worker"] == "w1" for b in batches)
