"""Failures are reported as host, task and message; bad input is one line and exit code 2."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from mmload.config.mattermost import MattermostSettings
from mmload.configure.driver import run_playbook
from mmload.configure.inventory import local_inventory
from mmload.configure.plan import MattermostInputs
from mmload.configure.progress import PlainReporter
from mmload.configure.run import raise_on_failure
from mmload.errors import RunFailed
from tests.configure.conftest import write_deployment
from tests.configure.fakesite import FakeSite
from tests.conftest import run_cli

SHA = "ab" * 32


@pytest.mark.slow
def test_bad_checksum_names_host_task_and_message(tmp_path: Path) -> None:
    """The emulated download site serves a tarball whose sha256 is not the one configured."""
    site = FakeSite(tmp_path / "site").start()
    try:
        mm = MattermostInputs(MattermostSettings(sha256=SHA), users=200, source="d.yaml")
        extravars = {
            **mm.extravars(need_checksum=True),
            **site.role_vars(),
            "mattermost_sha256": SHA,
            "mmload_root": str(tmp_path / "root"),
        }
        out = io.StringIO()
        result = run_playbook(
            inventory=local_inventory(
                {
                    "mmload_deployment": "mm-x",
                    "mmload_users": 200,
                    "mmload_site_url": "http://x",
                    "mmload_db": {
                        "writer_endpoint": "db",
                        "port": 5432,
                        "name": "m",
                        "username": "u",
                        "engine": "postgres",
                    },
                }
            ),
            work_dir=tmp_path / "runner",
            reporter=PlainReporter(out),
            extravars=extravars,
            secrets={"mattermost_db_password": "pw-not-shown-123"},
            tags=["mattermost"],
            timeout=300,
        )
    finally:
        site.stop()
    assert not result.ok
    [failure] = result.failures
    assert failure.host == "localhost"
    assert failure.task == "Download Mattermost (checksum verified)"
    assert "checksum" in failure.message.lower()
    assert "    failed: localhost: " in out.getvalue()
    with pytest.raises(RunFailed) as err:
        raise_on_failure(result)
    msg = str(err.value)
    assert msg.startswith(
        "configure failed: host localhost: task 'Download Mattermost (checksum verified)': "
    )
    assert "\n" not in msg and "pw-not-shown-123" not in msg


@pytest.mark.slow
def test_cli_unreachable_hosts_exit_1_with_host_and_task(
    tmp_path: Path, outputs_data: dict
) -> None:
    for group in outputs_data["hosts"].values():
        for host in group:
            host["public_ip"] = "127.0.0.1" if host["public_ip"] else None
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(outputs_data))
    dep = write_deployment(tmp_path, sha256=SHA)
    env = {**os.environ, "MMLOAD_DB_PASSWORD": "env-secret-4711"}
    # SSH to a closed port on 127.0.0.1 fails at once (no sshd listens on port 22 here; where
    # one does, the throwaway key is refused: unreachable either way).
    proc = run_cli(
        "configure",
        "-c",
        str(dep),
        "--outputs",
        str(outputs),
        "--tags",
        "common",
        env=env,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("mmload: error: configure failed: host mm-2k-")
    assert "task 'Gathering Facts': unreachable" in err[0]
    assert "play: Prepare every node for many connections" in proc.stdout  # plain progress
    assert "env-secret-4711" not in proc.stdout + proc.stderr


def test_cli_missing_checksum_is_exit_2(tmp_path: Path, outputs_file: Path) -> None:
    dep = write_deployment(tmp_path)
    proc = run_cli("configure", "-c", str(dep), "--outputs", str(outputs_file))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"mmload: error: {dep}: mattermost.sha256: required: the sha256 of "
        "mattermost-10.11.12-linux-amd64.tar.gz (the install verifies the tarball)"
    )


def test_cli_bad_checksum_format_is_exit_2(tmp_path: Path, outputs_file: Path) -> None:
    dep = write_deployment(tmp_path, sha256="not-a-sha")
    proc = run_cli("configure", "-c", str(dep), "--outputs", str(outputs_file))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"mmload: error: {dep}: mattermost.sha256: ")


def test_cli_unknown_tag_is_exit_2(tmp_path: Path, outputs_file: Path) -> None:
    dep = write_deployment(tmp_path, sha256=SHA)
    proc = run_cli("configure", "-c", str(dep), "--outputs", str(outputs_file), "--tags", "db")
    assert proc.returncode == 2
    assert "command line: --tags: unknown tag 'db'" in proc.stderr


def test_cli_outputs_of_another_deployment_is_exit_2(
    tmp_path: Path, outputs_file: Path, outputs_data: dict
) -> None:
    outputs_data["deployment"] = "other"
    outputs_file.write_text(json.dumps(outputs_data))
    dep = write_deployment(tmp_path, sha256=SHA)
    proc = run_cli("configure", "-c", str(dep), "--outputs", str(outputs_file))
    assert proc.returncode == 2
    assert f"{outputs_file}: deployment: belongs to deployment 'other'" in proc.stderr


def test_cli_default_outputs_missing_is_exit_2(tmp_path: Path) -> None:
    dep = write_deployment(tmp_path, sha256=SHA)
    proc = run_cli("configure", "-c", str(dep))
    assert proc.returncode == 2
    expected = tmp_path / ".deployments" / "mm-2k" / "outputs.json"
    assert f"mmload: error: {expected}: not found (run `mmload infra apply` first" in proc.stderr


def test_cli_missing_license_file_is_exit_2(tmp_path: Path, outputs_file: Path) -> None:
    dep = write_deployment(tmp_path, sha256=SHA, license_file=str(tmp_path / "nope.license"))
    proc = run_cli("configure", "-c", str(dep), "--outputs", str(outputs_file))
    assert proc.returncode == 2
    assert f"{dep}: mattermost.license_file: file not found" in proc.stderr
