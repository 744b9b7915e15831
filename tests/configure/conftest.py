"""Fixtures of the configuration tests: an outputs.json in the contract's shape, a deployment."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# docs/deployment-outputs.md, example values (plus the optional jump host provisioning adds).
OUTPUTS: dict[str, Any] = {
    "deployment": "mm-2k",
    "region": "us-east-1",
    "tier": "2000",
    "ssh_user": "ubuntu",
    "ssh_private_key_path": ".deployments/mm-2k/id_ed25519",
    "hosts": {
        "app": [
            {"name": "mm-2k-app-0", "private_ip": "10.0.1.10", "public_ip": None},
            {"name": "mm-2k-app-1", "private_ip": "10.0.1.11", "public_ip": None},
        ],
        "proxy": [{"name": "mm-2k-proxy-0", "private_ip": "10.0.0.10", "public_ip": "203.0.113.5"}],
        "metrics": [
            {"name": "mm-2k-metrics-0", "private_ip": "10.0.0.11", "public_ip": "203.0.113.6"}
        ],
        "agents": [
            {"name": "mm-2k-agent-0", "private_ip": "10.0.0.12", "public_ip": "203.0.113.7"}
        ],
        "coordinator": [
            {"name": "mm-2k-coordinator-0", "private_ip": "10.0.0.13", "public_ip": "203.0.113.8"}
        ],
    },
    "database": {
        "engine": "aurora-postgresql",
        "writer_endpoint": "mm-2k-db.cluster-xyz.us-east-1.rds.amazonaws.com",
        "reader_endpoints": ["mm-2k-db-1.xyz.us-east-1.rds.amazonaws.com"],
        "port": 5432,
        "name": "mattermost",
        "username": "mmuser",
        "master_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-db-mm-2k",
    },
    "search": {"endpoint": "vpc-mm-2k-abc.us-east-1.es.amazonaws.com"},
    "cache": {"endpoint": "mm-2k-cache.abc.cache.amazonaws.com", "port": 6379},
    "bucket": {"name": "mm-2k-files-abc", "region": "us-east-1"},
    "proxy_address": "203.0.113.5",
    "site_url": "http://203.0.113.5",
}


@pytest.fixture
def outputs_data() -> dict[str, Any]:
    return copy.deepcopy(OUTPUTS)


@pytest.fixture
def outputs_file(tmp_path: Path, outputs_data: dict[str, Any]) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs_data))
    return path


def write_deployment(tmp_path: Path, **mattermost: Any) -> Path:
    """A deployment.yaml named like the outputs fixture, working in ``tmp_path``."""
    import yaml

    data = {
        "name": "mm-2k",
        "tier": 2000,
        "operator_cidrs": ["198.51.100.7/32"],
        "working_dir": str(tmp_path / ".deployments"),
        "mattermost": mattermost,
    }
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class BackgroundApply:
    """`mmload infra plan` + `apply` against moto, run in a thread while other tests work.

    Terraform against the emulator takes minutes of mostly waiting; running it beside the local
    converge keeps this folder's wall time down. ``outputs()`` waits for it.
    """

    name = "mm-cfg"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.moto: Any = None
        self.error: BaseException | None = None
        self.log = ""
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> BackgroundApply:
        self.thread.start()
        return self

    def _run(self) -> None:
        from tests.provision.conftest import (
            MotoServer,
            cli,
            emulator_deployment,
            require_tools,
            tf_env,
        )

        try:
            require_tools()
            self.moto = MotoServer(self.tmp / "moto.log")
            env = tf_env(self.tmp)
            emulator_deployment(self.tmp / "deployment.yaml", self.moto, self.name)
            for step in ("plan", "apply"):
                proc = cli("infra", step, "-c", "deployment.yaml", cwd=self.tmp, env=env)
                self.log += proc.stdout[-3000:] + proc.stderr
                if proc.returncode != 0:
                    raise RuntimeError(f"mmload infra {step} failed: {self.log[-3000:]}")
        except BaseException as exc:  # reported to the test that waits for the outputs
            self.error = exc

    def outputs_path(self, timeout: float = 900) -> Path:
        self.thread.join(timeout)
        if self.thread.is_alive():
            pytest.fail("mmload infra apply against moto did not finish in time")
        if self.error:
            pytest.fail(f"emulator apply failed: {self.error}")
        return self.tmp / ".deployments" / self.name / "outputs.json"

    def close(self) -> None:
        """Wait for the apply and stop moto (by its pid); safe to call twice."""
        self.thread.join(900)
        if self.moto is not None:
            self.moto.stop()
            self.moto = None


@pytest.fixture(scope="session")
def emulator_apply(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundApply]:
    bg = BackgroundApply(tmp_path_factory.mktemp("provisioned")).start()
    try:
        yield bg
    finally:
        bg.close()
