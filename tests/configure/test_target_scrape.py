"""The metrics node of an agents-only deployment scrapes the existing server: the metrics role's
prometheus.yml, rendered by the real Ansible from outputs.json's ``target`` (through the
inventory), passes `promtool check config`, and a real Prometheus run with it scrapes a real
`mmload sim`'s metrics endpoint (``target.metrics_url``) and federates a second Prometheus, the
customer's, that scrapes the same simulator (``target.prometheus_url``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmload.configure.driver import ANSIBLE_DIR
from mmload.configure.inventory import DeploymentOutputs, deployment_vars
from mmload.sim.launcher import running_sim
from tests.load.promserver import running_prometheus

ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
ROLES = ANSIBLE_DIR / "roles"
pytestmark = pytest.mark.slow


def outputs(target: dict[str, Any]) -> DeploymentOutputs:
    host = {"name": "mm-ext-metrics-0", "private_ip": "127.0.0.1", "public_ip": None}
    return DeploymentOutputs.model_validate(
        {
            "deployment": "mm-ext",
            "region": "us-east-1",
            "tier": "2000",
            "ssh_user": "ubuntu",
            "ssh_private_key_path": "id_ed25519",
            "hosts": {"metrics": [host], "agents": [], "coordinator": []},
            "database": None,
            "site_url": target["url"],
            "load_targets": [target["url"]],
            "target": target,
        }
    )


def render_prometheus(tmp: Path, variables: dict[str, Any]) -> str:
    """prometheus.yml.j2 as the metrics role renders it (real ansible-playbook, local)."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
    inventory = {
        "all": {
            "vars": {"mmload_root": str(tmp / "root"), **variables},
            "children": {
                "metrics": {"hosts": {"metrics-0": {**local, "mmload_private_ip": "127.0.0.1"}}},
                "app": {"hosts": {}},
            },
        }
    }
    playbook = [
        {
            "name": "Render the Prometheus configuration",
            "hosts": "metrics-0",
            "gather_facts": False,
            "vars_files": [str(ROLES / "metrics/defaults/main.yml")],
            "tasks": [
                {
                    "name": "Render",
                    "ansible.builtin.template": {
                        "src": str(ROLES / "metrics/templates/prometheus.yml.j2"),
                        "dest": str(tmp / "prometheus.yml"),
                        "mode": "0644",
                    },
                }
            ],
        }
    ]
    (tmp / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp / "play.yml").write_text(yaml.safe_dump(playbook, sort_keys=False))
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "hosts.yml", "play.yml"],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    return (tmp / "prometheus.yml").read_text()


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)["data"]["result"]


def wait_for(prometheus: str, expr: str, timeout_s: float = 90) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        result = query(prometheus, expr)
        if result or time.monotonic() > deadline:
            return result
        time.sleep(1)


def fast(config: str) -> str:
    """The rendered configuration with a 1 s scrape interval (the test's only change)."""
    data = yaml.safe_load(config)
    data["global"]["scrape_interval"] = data["global"]["evaluation_interval"] = "1s"
    return yaml.safe_dump(data)


def test_metrics_node_scrapes_and_federates_the_existing_server(tmp_path: Path) -> None:
    with running_sim(users=10, log_path=tmp_path / "sim.log") as sim:
        assert sim.metrics_url
        metrics = sim.metrics_url  # http://127.0.0.1:PORT/metrics
        host = urllib.parse.urlsplit(metrics).netloc
        customer_config = yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "customer-mm", "static_configs": [{"targets": [host]}]}
                ],
            }
        )
        (tmp_path / "customer").mkdir()
        with running_prometheus(customer_config, tmp_path / "customer") as customer:
            target = {"url": sim.url, "prometheus_url": customer, "metrics_url": metrics}
            variables = deployment_vars(outputs(target), users=10)
            assert variables["mmload_target"] == target
            (tmp_path / "render").mkdir()
            config = render_prometheus(tmp_path / "render", variables)
            check = subprocess.run(
                ["promtool", "check", "config", str(tmp_path / "render" / "prometheus.yml")],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert check.returncode == 0, check.stdout + check.stderr
            jobs = {j["job_name"]: j for j in yaml.safe_load(config)["scrape_configs"]}
            assert "mattermost" not in jobs  # no app node of ours
            federate = jobs["target-federate"]
            assert federate["metrics_path"] == "/federate" and federate["honor_labels"] is True
            assert jobs["target-mattermost"]["metrics_path"] == "/metrics"
            (tmp_path / "ours").mkdir()
            with running_prometheus(fast(config), tmp_path / "ours") as ours:
                direct = wait_for(ours, 'up{job="target-mattermost"} == 1')
                assert direct, query(ours, "up")
                # the customer's series arrive with the customer's own job label
                federated = wait_for(ours, 'mattermost_http_requests_total{job="customer-mm"}')
                assert federated, query(ours, "up")
                assert all(s["metric"]["role"] == "target" for s in federated)
