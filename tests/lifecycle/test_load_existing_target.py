"""Load from the deployment's agents against an existing server (deployment.yaml ``target:``):
`mmload load start` through real OpenSSH servers on loopback addresses (tests/sshhosts.py) —
the jump host, the coordinator and two agents, no Mattermost host — with an outputs.json as an
agents-only deployment writes it. A real `mmload sim` stands in for the customer's server: the
master goes to ``load_targets`` (the customer's URL, not ``site_url``), and the agent with three
private IPs sends its users' logins from each of them (the simulator's own limiter keys)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from mmload import record
from mmload.net import free_port
from mmload.sim.launcher import SimProcess, running_sim
from tests.conftest import MMLOAD
from tests.lifecycle.test_load_remote import finish, wait_for_line
from tests.sshhosts import SshHosts

pytestmark = pytest.mark.slow

NAME = "mm-ext"
COORD, AGENTS = f"{NAME}-coordinator-0", (f"{NAME}-agents-0", f"{NAME}-agents-1")
SCENARIO = {
    "name": "existing-storm",
    "kind": "storm",
    "users": 6,
    "arrival_s": 2,
    "hold_s": 4,
    "websocket": {"enabled": False},
    "actions": False,
}


@pytest.fixture(scope="module")
def customer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """The customer's server: both limiters on, wide enough never to refuse (their keys are the
    simulator's record of which address sent what)."""
    tmp = tmp_path_factory.mktemp("customer")
    profile = tmp / "limited.yaml"
    profile.write_text(
        "extends: fast\n"
        "login_rate_limit: {per_sec: 1000, burst: 1000}\n"
        "global_rate_limit: {per_sec: 10000, max_burst: 10000}\n"
    )
    with running_sim(users=50, profile_file=str(profile), log_path=tmp / "sim.log") as s:
        yield s


def logins(sim: SimProcess) -> dict[str, int]:
    assert sim.metrics_url is not None
    url = sim.metrics_url.removesuffix("/metrics") + "/limiters"
    return requests.get(url, timeout=10).json()["login"]["allowed"]


def test_agents_only_deployment_loads_the_customer_url_from_every_agent_address(
    tmp_path: Path, ssh_hosts: SshHosts, customer: SimProcess
) -> None:
    ssh_hosts.start("jump", COORD, *AGENTS)
    workdir = tmp_path / ".deployments" / NAME
    target = {"url": customer.url, "prometheus_url": None, "metrics_url": None}
    path = ssh_hosts.outputs(
        workdir,
        deployment=NAME,
        jump="jump",
        roles={"coordinator": [COORD], "agents": list(AGENTS)},
        extra={
            "database": None,
            "site_url": "http://127.0.0.1:9",  # not where load goes: load_targets is
            "load_targets": [customer.url],
            "target": target,
        },
    )
    outputs = json.loads(path.read_text())
    agent = outputs["hosts"]["agents"][0]
    extra = [f"{ssh_hosts.prefix}.{n}" for n in (201, 202)]  # its secondary private IPs
    agent["private_ips"] = [agent["private_ip"], *extra]
    path.write_text(json.dumps(outputs, indent=2))
    config = tmp_path / "deployment.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": NAME,
                "tier": 200,
                "operator_cidrs": ["203.0.113.7/32"],
                "working_dir": str(tmp_path / ".deployments"),
                "target": {"url": customer.url},
            }
        )
    )
    scenario = tmp_path / "existing-storm.yaml"
    scenario.write_text(json.dumps(SCENARIO))
    port = free_port(ssh_hosts.hosts[COORD].address)
    before = logins(customer)
    proc = subprocess.Popen(
        [MMLOAD, "load", "start", "-c", str(config), str(scenario), "--workers-per-agent", "1",
         "--remote-mmload", MMLOAD, "--remote-dir", str(tmp_path / "remote"),
         "--master-port", str(port), "--out", str(tmp_path / "runs"), "--yes"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen: list[str] = []
    try:
        wait_for_line(proc, "[", seen)
        code, out, err = finish(proc, seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, out + err
    local = Path(out.split("record copied back complete: ")[1].split()[0])
    meta = record.read_run(local)
    assert meta["outcome"] == "completed" and meta["target"].rstrip("/") == customer.url
    assert len(meta["workers_reported"]) == 2 and meta["totals"]["requests"] > 0
    delta = {k: n - before.get(k, 0) for k, n in logins(customer).items()}
    delta = {k: n for k, n in delta.items() if n > 0}
    assert sum(delta.values()) == SCENARIO["users"], delta
    # the first agent's users from each of its three addresses; the second's from the
    # system's choice (all of this machine's agents reach the sim on 127.0.0.1)
    assert set(agent["private_ips"]) <= set(delta), delta
    assert set(delta) == {*agent["private_ips"], "127.0.0.1"}, delta
