"""Fixtures for provisioning tests: a moto server on 127.0.0.1, a Terraform environment, files.

AWS itself cannot be reached here, so moto (a real HTTP server implementing the AWS APIs) stands
in for it; everything else is real: the terraform CLI, the hashicorp/aws provider, checkov.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mmload.net import free_port
from tests.conftest import run_cli

MOTO = str(Path(sys.executable).with_name("moto_server"))
PLUGIN_DIR = os.environ.get("MMLOAD_TF_PLUGIN_DIR", "/opt/tf-plugins")
MOTO_UBUNTU_AMI = "ami-1e749f67"  # an Ubuntu image moto ships in its AMI catalog
OPERATOR = "203.0.113.7/32"


class MotoServer:
    """A moto_server process on a free port; stopped by its own pid."""

    def __init__(
        self,
        log: Path,
        extra_env: dict[str, str] | None = None,
        command: list[str] | None = None,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true"}
        env.update(extra_env or {})
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [*(command or [MOTO]), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 60  # returns once it answers
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto_server did not start: {log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def client(self, service: str):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path / "moto.log")
    try:
        yield server
    finally:
        server.stop()


def require_tools() -> None:
    if shutil.which("terraform") is None:
        pytest.fail("terraform CLI not on PATH (the image ships 1.11)")
    if not Path(PLUGIN_DIR).is_dir():
        pytest.fail(f"provider mirror {PLUGIN_DIR} missing (set MMLOAD_TF_PLUGIN_DIR)")


def tf_env(tmp: Path) -> dict[str, str]:
    """Fake AWS credentials, the offline provider mirror, and an empty Terraform CLI config."""
    rc = tmp / "terraformrc"
    rc.write_text("")
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "TF_CLI_CONFIG_FILE": str(rc),
        "MMLOAD_TF_PLUGIN_DIR": PLUGIN_DIR,
        "CHECKPOINT_DISABLE": "1",
    }


def write_deployment(path: Path, **fields) -> Path:
    """A deployment.yaml with an operator CIDR and the given fields; without a ``mattermost``
    section, a stand-in license file beside it (the license gate needs one; nothing here
    reads its content)."""
    if "mattermost" not in fields:
        lic = path.with_name("stand-in.mattermost-license")
        lic.write_text("stand-in license (mmload tests)\n")
        fields["mattermost"] = {"license_file": str(lic)}
    data = {"operator_cidrs": [OPERATOR], **fields}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def emulator_deployment(path: Path, moto: MotoServer, name: str, **extra) -> Path:
    """A 2,000-user deployment against moto, with the parts moto cannot emulate switched off.

    moto 5.2 lacks: EC2 MonitorInstances (detailed monitoring -> HTTP 500 forever), and its
    OpenSearch DescribeDomain answers 409 ResourceNotFound right after CreateDomain, so the
    provider never sees the domain. Those two are covered by validate + plan instead.
    """
    return write_deployment(
        path,
        name=name,
        tier=2000,
        ami_id=MOTO_UBUNTU_AMI,
        owner="ci",
        components={"search": False, "detailed_monitoring": False},
        aws={"endpoint_url": moto.url},
        **extra,
    )


def cli(*args: str, cwd: Path, env: dict[str, str], timeout: float = 600):
    """Run mmload in ``cwd`` with ``env``."""
    return run_cli(*args, cwd=cwd, env=env, timeout=timeout)
