"""An agent with several private IPs (outputs.json ``private_ips``) runs its configured Locust
workers with a ``--source-address`` for each: the agents role's `mmload-worker@` unit rendered by
the real Ansible from the inventory that configuration builds from outputs.json; an agent with
one address gets none (the system's choice)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmload.configure.driver import ANSIBLE_DIR
from mmload.configure.inventory import DeploymentOutputs, build_inventory

ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
ROLES = ANSIBLE_DIR / "roles"
pytestmark = pytest.mark.slow
IPS = ["10.40.0.20", "10.40.0.21", "10.40.0.22"]


def outputs() -> DeploymentOutputs:
    agents = [
        {"name": "mm-x-agents-0", "private_ip": IPS[0], "public_ip": None, "private_ips": IPS},
        {"name": "mm-x-agents-1", "private_ip": "10.40.0.30", "public_ip": None},
    ]
    coordinator = [{"name": "mm-x-coordinator-0", "private_ip": "10.40.0.13"}]
    return DeploymentOutputs.model_validate(
        {
            "deployment": "mm-x",
            "region": "us-east-1",
            "tier": "2000",
            "ssh_user": "ubuntu",
            "ssh_private_key_path": "id_ed25519",
            "hosts": {"agents": agents, "coordinator": coordinator},
            "site_url": "https://chat.example.com",
            "load_targets": ["https://chat.example.com"],
        }
    )


def render_units(tmp: Path) -> dict[str, str]:
    """The unit file of each agent, rendered by ansible-playbook (connection local)."""
    inventory: dict[str, Any] = build_inventory(outputs(), users=10, key=tmp / "id_ed25519")
    local = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
    for host in inventory["all"]["children"]["agents"]["hosts"].values():
        host.update(local)
    inventory["all"]["vars"]["mmload_root"] = str(tmp / "root")
    playbook = [
        {
            "name": "Render the worker unit",
            "hosts": "agents",
            "gather_facts": False,
            "vars_files": [
                str(ANSIBLE_DIR / "group_vars/all.yml"),
                str(ROLES / "agents/defaults/main.yml"),
            ],
            "tasks": [
                {
                    "name": "Render",
                    "ansible.builtin.template": {
                        "src": str(ROLES / "agents/templates/mmload-worker@.service.j2"),
                        "dest": str(tmp / "{{ inventory_hostname }}.service"),
                        "mode": "0644",
                    },
                }
            ],
        }
    ]
    (tmp / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp / "play.yml").write_text(yaml.safe_dump(playbook, sort_keys=False))
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "hosts.yml", "play.yml", "-e", "mmload_root=" + str(tmp / "r")],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    return {p.stem: p.read_text() for p in tmp.glob("*.service")}


def test_each_private_ip_of_an_agent_is_a_source_address_of_its_workers(tmp_path: Path) -> None:
    units = render_units(tmp_path)
    (start,) = [ln for ln in units["mm-x-agents-0"].splitlines() if ln.startswith("ExecStart=")]
    assert start.endswith(
        "worker --master 10.40.0.13 --master-port 5557"
        + "".join(f" --source-address {ip}" for ip in IPS)
    ), start
    (single,) = [ln for ln in units["mm-x-agents-1"].splitlines() if ln.startswith("ExecStart=")]
    assert "--source-address" not in single and single.endswith("--master-port 5557"), single
