"""`mmload up` interrupted during apply and resumed, `status`, then `sweep` of the deployment
after its working dir is deleted: one apply of the smallest tier with the real terraform CLI
and hashicorp/aws provider against moto on 127.0.0.1 (AWS itself cannot be reached here).

moto lacks EC2's vCPU quotas in Service Quotas; the emulator here adds them
(tests/lifecycle/moto_quotas.py, AWS's side only). Configure and seed are not run: moto starts
no machines (they are tested in tests/configure against real SSH hosts).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mmload.lifecycle.aws import Aws
from mmload.lifecycle.status import deployment_resources
from tests.lifecycle.moto_quotas import QUOTAS_ENV, command
from tests.provision.conftest import (
    MOTO_UBUNTU_AMI,
    MotoServer,
    cli,
    require_tools,
    tf_env,
    write_deployment,
)
from tests.provision.test_lifecycle_moto import leftovers

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
NAME = "mm-up"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")
MMLOAD = str(Path(sys.executable).with_name("mmload"))


def expired_meta(workdir: Path) -> None:
    """Created 9 h ago with an 8 h TTL: render reuses this file, so the tags say expired."""
    now = datetime.now(UTC)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    workdir.mkdir(parents=True)
    meta = {
        "created_at": (now - timedelta(hours=9)).strftime(fmt),
        "ttl_hours": 8,
        "expires_at": (now - timedelta(hours=1)).strftime(fmt),
    }
    (workdir / "mmload-meta.json").write_text(json.dumps(meta))


def up_interrupted(tmp: Path, env: dict[str, str], after: int) -> tuple[int, str, str]:
    """`mmload up` with Ctrl-C (SIGINT to its process group, as a terminal sends it) once
    ``after`` resources are created."""
    argv = [MMLOAD, "up", "-c", "deployment.yaml", "--only", "preflight,provision", "--yes"]
    proc = subprocess.Popen(
        argv,
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    out: list[str] = []
    assert proc.stdout is not None
    sent = False
    try:
        for line in proc.stdout:
            out.append(line)
            done = re.search(r"provision: (\d+)/\d+ resources done", line)
            if done and int(done.group(1)) >= after and not sent:
                os.killpg(proc.pid, signal.SIGINT)
                sent = True
        code = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert sent, "the apply finished before it could be interrupted:\n" + "".join(out)[-3000:]
    assert proc.stderr is not None
    return code, "".join(out), proc.stderr.read()


def test_up_interrupted_resumes_then_status_then_sweep_without_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tools()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # the test's own look at the emulator
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    quotas = tmp_path / "quotas.json"
    quotas.write_text(json.dumps({"L-1216C47A": 640}))
    moto = MotoServer(
        tmp_path / "moto.log", {QUOTAS_ENV: str(quotas), "PYTHONPATH": str(REPO)}, command()
    )
    try:
        flow(tmp_path, moto)
    finally:
        moto.stop()


def flow(tmp: Path, moto: MotoServer) -> None:
    env = tf_env(tmp)
    workdir = tmp / ".deployments" / NAME
    write_deployment(
        tmp / "deployment.yaml",
        name=NAME,
        tier=200,  # the smallest tier
        ami_id=MOTO_UBUNTU_AMI,
        owner="ci",
        components={"search": False, "detailed_monitoring": False},
        aws={"endpoint_url": moto.url},
        mattermost={"sha256": "ab" * 32, "unlicensed": True},
    )
    expired_meta(workdir)
    aws = Aws("us-east-1", None, moto.url)

    # 1. interrupted during apply: terraform stops cleanly, the state file says where
    code, out, err = up_interrupted(tmp, env, after=4)
    assert code == 130, out[-3000:] + err
    assert "PASS credentials: account 123456789012" in out and "FAIL" not in out
    assert "Plan: " in out and "Estimated cost $" in out
    assert all(STAMP.match(ln) for ln in out.splitlines() if ln.strip()), out[:2000]
    assert err.strip().splitlines()[-1] == (
        "mmload: interrupted during provision (terraform saved what it created in its state); "
        "continue with `mmload up -c deployment.yaml --only preflight,provision --yes`"
    ), err
    assert "Traceback" not in err
    state = json.loads((workdir / "up-state.json").read_text())
    assert list(state["finished"]) == ["preflight"]
    assert state["stopped"]["step"] == "provision" and state["stopped"]["why"] == "interrupted"
    assert json.loads((workdir / "zones.json").read_text())["zones"] == ["us-east-1a", "us-east-1b"]
    partial = deployment_resources(aws, NAME)
    assert partial, "nothing was created before the interrupt"

    # 2. `up` again continues with provision and ends as an uninterrupted apply would
    again = cli(
        "up", "-c", "deployment.yaml", "--only", "preflight,provision", "--yes", cwd=tmp, env=env
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    assert "the last `up` stopped in provision" in again.stdout
    assert "resuming: already done: preflight (finished " in again.stdout
    assert "continuing with provision" in again.stdout and "PASS credentials" not in again.stdout
    state = json.loads((workdir / "up-state.json").read_text())
    assert list(state["finished"]) == ["preflight", "provision"] and state["stopped"] is None
    outputs = json.loads((workdir / "outputs.json").read_text())
    counts = {role: len(nodes) for role, nodes in outputs["hosts"].items()}
    assert counts == {"app": 1, "proxy": 1, "metrics": 1, "agents": 1, "coordinator": 1}
    found = deployment_resources(aws, NAME)
    instances = [r for r in found if r.kind == "ec2:instance"]
    assert len(instances) == 5, "an interrupted apply left an instance outside the state"
    state_text = (workdir / "terraform.tfstate").read_text()
    leaked = [r.arn for r in found if r.resource_id not in state_text]
    assert not leaked, f"tagged but not in the state: {leaked}"
    listed = subprocess.run(
        ["terraform", "state", "list"], cwd=workdir, env=env, capture_output=True, text=True
    ).stdout.split()
    assert len([a for a in listed if a.startswith("aws_instance.")]) == 5
    # Nothing of the configuration is missing from the state. (A follow-up plan is not empty
    # against moto even after an uninterrupted apply: its RDS and EC2 answers drift.)
    subprocess.run(
        ["terraform", "plan", "-input=false", "-out=check.plan"],
        cwd=workdir,
        env=env,
        check=True,
        capture_output=True,
    )
    shown = subprocess.run(
        ["terraform", "show", "-json", "check.plan"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    changes = json.loads(shown.stdout)["resource_changes"]
    missing = [c["address"] for c in changes if c["change"]["actions"] == ["create"]]
    assert not missing, f"not in the state after the resumed apply: {missing}"
    nothing = cli("up", "-c", "deployment.yaml", "--only", "preflight,provision", cwd=tmp, env=env)
    assert nothing.returncode == 0 and "nothing left to do" in nothing.stdout

    # 3. status: what exists, since when, cost, expiry (the meta file says 1 h ago)
    status = cli("status", "-c", "deployment.yaml", cwd=tmp, env=env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"{NAME}: {len(found)} tagged resources (" in status.stdout
    assert "5 ec2:instance" in status.stdout and "1 rds:cluster" in status.stdout
    assert re.search(r"cost \$\d+\.\d\d/h, about \$\d+\.\d\d accrued", status.stdout)
    assert re.search(r"ttl: expires at \S+Z, expired 1 h \d\d min ago", status.stdout)
    assert "up: finished preflight " in status.stdout

    # 4. the working dir is lost; sweep finds the deployment from its tags and removes it
    shutil.rmtree(tmp / ".deployments")
    listing = cli("sweep", "--endpoint-url", moto.url, cwd=tmp, env=env)
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert re.search(
        rf"^{NAME}: owner ci, expired \S+ \(1\.\d h ago\), \d+ resources", listing.stdout, re.M
    )
    assert "`mmload sweep --yes` destroys them" in listing.stdout
    assert len(deployment_resources(aws, NAME)) == len(found)  # listing removed nothing
    swept = cli("sweep", "--endpoint-url", moto.url, "--yes", cwd=tmp, env=env)
    assert swept.returncode == 0, swept.stdout[-3000:] + swept.stderr
    assert f"{NAME}: destroyed; nothing tagged is left" in swept.stdout
    assert deployment_resources(aws, NAME) == []
    assert leftovers(moto, NAME) == []  # by the provisioning tests' own inventory, untagged too
    # 5. down with the working dir gone: nothing in its state; a resource tagged by hand
    #    (as a leak would be) is found through the tags, listed, and down exits 1
    ec2 = moto.client("ec2")
    tag = [{"Key": "mmload:deployment", "Value": NAME}]
    vpc = ec2.create_vpc(
        CidrBlock="10.99.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": tag}]
    )["Vpc"]["VpcId"]
    down = cli("down", "-c", "deployment.yaml", "--yes", cwd=tmp, env=env)
    assert down.returncode == 1, down.stdout[-2000:] + down.stderr
    assert f"left: arn:aws:ec2:us-east-1:123456789012:vpc/{vpc}" in down.stderr
    assert down.stderr.strip().splitlines()[-1].startswith("mmload: error: down: 1 resources")
    ec2.delete_vpc(VpcId=vpc)
    down = cli("down", "-c", "deployment.yaml", "--yes", cwd=tmp, env=env)
    assert down.returncode == 0, down.stdout[-2000:] + down.stderr
    assert f"down: nothing tagged mmload:deployment={NAME} is left" in down.stdout
