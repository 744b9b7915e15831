"""Passwords never in Locust messages (issue 10, item 6): the master's plan carries the scenario
without the population's password; each worker reads it from its own 0600 file.

A real master and worker (`mmload run --workers 1`) against a real `mmload sim` whose users have
a password of their own; every message the master's ZeroMQ server sends or receives is recorded
(tests/load/wire_check.py) and searched for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmload import record
from mmload.config.scenario import Population, Scenario
from mmload.errors import RunFailed
from mmload.load.plan import Plan
from mmload.load.population import read_population, write_population
from mmload.net import free_port
from mmload.sim.launcher import SimProcess, running_sim
from tests.conftest import MMLOAD
from tests.load.conftest import run_dir_from, write_scenario

PASSWORD = "Wire-Secret-7f3a9!"
WIRE_CHECK = Path(__file__).with_name("wire_check.py")
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    with running_sim(users=50, password=PASSWORD, log_path=log) as s:
        yield s


@pytest.mark.slow
def test_no_message_between_master_and_worker_carries_the_password(
    tmp_path: Path, sim: SimProcess
) -> None:
    scenario = write_scenario(
        tmp_path / "wire.yaml",
        name="wire",
        kind="storm",
        users=6,
        arrival_s=1,
        hold_s=2,
        idle={"min_ms": 100, "avg_ms": 200},
        population={"size": 50, "password": PASSWORD},
    )
    out = subprocess.run(
        [sys.executable, str(WIRE_CHECK), PASSWORD, "--", "run", str(scenario),
         "--target", sim.url, "--out", str(tmp_path), "--workers", "1", "--no-fail-on-slo"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["code"] == 0, out.stdout + out.stderr
    # the recording saw the traffic it must judge: the plan, the spawn, the batches back
    assert {"to worker: mmload_plan", "to worker: spawn", "from worker: mmload_batch"} <= set(
        res["types"]
    ), res["types"]
    assert res["with_password"] == []
    # the worker read it from the master's private file: 0600 in a 0700 folder, gone after
    [written] = res["files"]
    assert written["file_mode"] == 0o600 and written["dir_mode"] == 0o700
    assert written["has_password"] and not Path(written["path"]).parent.exists()
    # ... and logged its users in with it (the simulator knows no other password)
    rows = record.read_table(run_dir_from(out.stdout), record.REQUESTS, ["name", "status"])
    logins = rows.to_pandas().query("name == 'POST /api/v4/users/login'")
    assert len(logins) == 6 and (logins["status"] == 200).all()


def test_the_plan_message_has_no_password_and_the_worker_takes_its_own() -> None:
    scenario = Scenario(name="p", kind="storm", population={"password": PASSWORD, "size": 9})
    plan = Plan.for_process(scenario, 1.0, 2, 1, "w1")
    message = plan.to_message()
    assert PASSWORD not in json.dumps(message)
    received = Plan.from_message(message)
    mine = received.with_population(Population(password=PASSWORD, size=9), "f")
    assert mine.credentials(0) == ("user-1", PASSWORD)
    with pytest.raises(RunFailed, match="differs from the master's scenario"):
        received.with_population(Population(password=PASSWORD, size=10), "f")


def test_a_population_file_is_owner_only_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "population.json"
    old = os.umask(0)
    try:
        write_population(path, Population(password=PASSWORD))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_population(path).password == PASSWORD
    path.chmod(0o644)
    with pytest.raises(RunFailed, match=r"must be 0600 \(it is 644\)"):
        read_population(path)
    with pytest.raises(RunFailed, match="no population file for this worker"):
        read_population(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    write_population(bad, Population())
    bad.write_text("[1]")
    with pytest.raises(RunFailed, match="not a population file"):
        read_population(bad)


@pytest.mark.slow
def test_a_worker_without_its_population_file_fails_the_run_in_one_line(
    tmp_path: Path, sim: SimProcess
) -> None:
    """An agent started without the file (nothing on the wire could replace it): it tells the
    master why and quits; the run ends failed with that line instead of running empty."""
    port = free_port()
    scenario = write_scenario(tmp_path / "s.yaml", name="nofile", kind="steady", users=2,
                              arrival_s=1, hold_s=30, websocket={"enabled": False})  # fmt: skip
    run = subprocess.Popen(
        [MMLOAD, "run", str(scenario), "--target", sim.url, "--out", str(tmp_path),
         "--remote-workers", "1", "--master-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    missing = tmp_path / "nowhere" / "population.json"
    agent = subprocess.Popen(
        [MMLOAD, "worker", "--master", "127.0.0.1", "--master-port", str(port),
         "--population", str(missing)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _, agent_err = agent.communicate(timeout=120)
        _, run_err = run.communicate(timeout=120)
    finally:
        for p in (run, agent):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert agent.returncode == 1
    assert agent_err.strip().splitlines()[-1] == (
        f"mmload: error: no population file for this worker: {missing}: No such file or directory"
    )
    assert run.returncode == 1 and "Traceback" not in run_err + agent_err
    assert f"a worker: no population file for this worker: {missing}" in run_err
