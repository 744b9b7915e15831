"""Preflight: each check PASS and FAIL against moto on 127.0.0.1 (AWS cannot be reached here).

Credentials, instance-type offerings, instance vCPUs and the instances in use are moto's own
implementations. moto 5.2 has no EC2 quotas in Service Quotas, so the server here is moto with
EC2's ``GetServiceQuota`` added (tests/lifecycle/moto_quotas.py, emulating AWS only). Terraform
and its provider mirror are the real ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmload.config.deployment import Deployment
from mmload.errors import UserError
from mmload.lifecycle.aws import Aws
from mmload.lifecycle.preflight import (
    STANDARD_QUOTA,
    Check,
    check_checksum,
    check_cidrs,
    check_credentials,
    check_license,
    check_offerings,
    check_quotas,
    check_terraform,
    family_quota,
    run_preflight,
)
from mmload.provision.license import check_license as provision_license
from mmload.provision.render import read_zones, render, write_zones
from mmload.provision.sizing import resolve
from tests.lifecycle.moto_quotas import QUOTAS_ENV, command
from tests.provision.conftest import MOTO_UBUNTU_AMI, PLUGIN_DIR, MotoServer, cli

REPO = Path(__file__).resolve().parents[2]
SHA = "a" * 64
TRN_QUOTA = "L-2C3B7624"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MotoServer, Path]]:
    tmp = tmp_path_factory.mktemp("preflight")
    quotas = tmp / "quotas.json"
    quotas.write_text(json.dumps({STANDARD_QUOTA: 1000, TRN_QUOTA: 64}))
    moto = MotoServer(
        tmp / "moto.log", {QUOTAS_ENV: str(quotas), "PYTHONPATH": str(REPO)}, command()
    )
    try:
        yield moto, quotas
    finally:
        moto.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def deployment(moto: MotoServer, **fields) -> Deployment:
    data = {
        "name": "mm-pre",
        "tier": 200,
        "operator_cidrs": ["203.0.113.7/32"],
        "ami_id": MOTO_UBUNTU_AMI,
        "components": {"search": False, "detailed_monitoring": False},
        "aws": {"endpoint_url": moto.url},
        "mattermost": {"sha256": SHA, "unlicensed": True},
        "terraform": {"plugin_dir": PLUGIN_DIR},
        **fields,
    }
    return Deployment.model_validate(data)


def test_credentials_pass_and_fail(server, aws_env, monkeypatch, tmp_path) -> None:
    moto, _ = server
    dep = deployment(moto)
    ok = check_credentials(dep, Aws.for_deployment(dep))
    assert ok.ok and "account 123456789012" in ok.detail and "region us-east-1" in ok.detail
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    bad = check_credentials(dep, Aws.for_deployment(dep))
    assert not bad.ok and "credentials" in bad.detail.lower() and "aws configure" in bad.fix
    missing = deployment(moto, aws={"endpoint_url": moto.url, "profile": "nosuch"})
    assert not check_credentials(missing, Aws.for_deployment(missing)).ok


def test_quota_pass_fail_and_instances_in_use(server, aws_env) -> None:
    moto, quotas = server
    dep = deployment(moto)
    aws = Aws.for_deployment(dep)
    sizing = resolve(dep)
    # tier 200: c7i.large (2) + m7i.4xlarge (16) + 2 x c7i.xlarge (4) + c7i.2xlarge (8) = 34
    (ok,) = check_quotas(dep, aws, sizing)
    assert ok.ok and "need 34, quota 1000" in ok.detail, ok
    quotas.write_text(json.dumps({STANDARD_QUOTA: 40}))
    # someone else's instance in the account uses 8 of the 40
    ec2 = moto.client("ec2")
    run = ec2.run_instances(
        ImageId=MOTO_UBUNTU_AMI, InstanceType="c7i.2xlarge", MinCount=1, MaxCount=1
    )
    try:
        (bad,) = check_quotas(dep, aws, sizing)
        assert not bad.ok and "need 34, quota 40, in use 8 (free 32)" in bad.detail, bad
        assert "request at least 42 vCPUs for L-1216C47A" in bad.fix
        quotas.write_text("{}")  # the account's quota cannot be read
        (unread,) = check_quotas(dep, aws, sizing)
        assert not unread.ok and "cannot read" in unread.detail
    finally:
        ec2.terminate_instances(InstanceIds=[i["InstanceId"] for i in run["Instances"]])
        quotas.write_text(json.dumps({STANDARD_QUOTA: 1000, TRN_QUOTA: 64}))


def test_quota_codes_by_family() -> None:
    assert family_quota("c7i.large") == STANDARD_QUOTA
    assert family_quota("m7i.4xlarge") == STANDARD_QUOTA
    assert family_quota("trn1.2xlarge") == TRN_QUOTA
    assert family_quota("g5.xlarge") == "L-DB2E81BA"
    assert family_quota("inf2.xlarge") == "L-1945791B"
    assert family_quota("x2iedn.xlarge") == "L-7295265B"


def test_offerings_pick_zones_that_offer_every_type(server, aws_env, tmp_path) -> None:
    moto, _ = server
    dep = deployment(moto)
    aws = Aws.for_deployment(dep)
    ok, zones = check_offerings(dep, aws, resolve(dep), tmp_path)
    assert ok.ok and zones == ["us-east-1a", "us-east-1b"], ok
    # trn1.2xlarge is offered in us-east-1c and us-east-1f only (moto's offerings data)
    trn = deployment(moto, load={"agent_instance_type": "trn1.2xlarge"})
    ok, zones = check_offerings(trn, aws, resolve(trn), tmp_path)
    assert ok.ok and zones == ["us-east-1c", "us-east-1f"], ok
    checks = check_quotas(trn, aws, resolve(trn))
    assert {c.name for c in checks} == {f"vCPU quota {STANDARD_QUOTA}", f"vCPU quota {TRN_QUOTA}"}
    # named AZs that lack a type fail, naming what is missing and where it is offered
    named = deployment(moto, availability_zones=["us-east-1a", "us-east-1e"])
    bad, zones = check_offerings(named, aws, resolve(named), tmp_path)
    assert not bad.ok and zones == [] and "us-east-1e lacks c7i.2xlarge" in bad.detail, bad
    assert "us-east-1a, us-east-1b, us-east-1c" in bad.fix
    unknown = deployment(moto, load={"agent_instance_type": "c7i.huge9"})
    bad, _ = check_offerings(unknown, aws, resolve(unknown), tmp_path)
    assert not bad.ok and "c7i.huge9 not offered in us-east-1" in bad.detail, bad
    (bad_quota,) = [c for c in check_quotas(unknown, aws, resolve(unknown)) if not c.ok]
    assert "unknown instance type(s) c7i.huge9" in bad_quota.detail


def test_picked_zones_reach_the_rendered_terraform(server, aws_env, tmp_path) -> None:
    """The seam preflight -> render: the AZs picked are the ones the network is built in."""
    moto, _ = server
    dep = deployment(moto, load={"agent_instance_type": "trn1.2xlarge"})
    result = run_preflight(dep, Aws.for_deployment(dep), tmp_path)
    assert result.ok, [c.line() for c in result.failed()]
    assert result.zones == ["us-east-1c", "us-east-1f"]
    write_zones(tmp_path, result.zones)
    assert read_zones(tmp_path) == ["us-east-1c", "us-east-1f"]
    render(dep, tmp_path)
    providers = (tmp_path / "providers.tf").read_text()
    assert 'azs  = ["us-east-1c", "us-east-1f"]' in providers
    # the zones once picked are kept while they still offer every type
    again = run_preflight(dep, Aws.for_deployment(dep), tmp_path)
    assert again.zones == ["us-east-1c", "us-east-1f"]


def test_license_checksum_and_cidr(server, tmp_path) -> None:
    moto, _ = server
    # one app node, no search: /metrics still needs a license
    small = deployment(moto, mattermost={"sha256": SHA})
    bare = check_license(small, resolve(small), "d.yaml")
    assert not bare.ok and "/metrics" in bare.detail and "unlicensed: true" in bare.detail
    unlicensed = deployment(moto, mattermost={"sha256": SHA, "unlicensed": True})
    assert check_license(unlicensed, resolve(unlicensed), "d.yaml").ok
    ha = deployment(moto, tier=2000, mattermost={"sha256": SHA})
    bad = check_license(ha, resolve(ha), "d.yaml")
    assert not bad.ok and "2 app nodes" in bad.detail and "mattermost.license_file" in bad.fix
    lic = tmp_path / "mattermost.license"
    lic.write_text("license")
    licensed = deployment(moto, tier=2000, mattermost={"sha256": SHA, "license_file": str(lic)})
    assert check_license(licensed, resolve(licensed), "d.yaml").ok
    gone = deployment(moto, tier=2000, mattermost={"sha256": SHA, "license_file": "/nope"})
    assert not check_license(gone, resolve(gone), "d.yaml").ok
    # the seam: preflight passes exactly the deployments provisioning's gate lets through
    for dep in (small, unlicensed, ha, licensed, gone):
        try:
            provision_license(dep, resolve(dep), "d.yaml")
            allowed = True
        except UserError:
            allowed = False
        assert check_license(dep, resolve(dep), "d.yaml").ok == allowed

    assert check_checksum(small, "d.yaml").ok
    no_sum = deployment(moto, mattermost={})
    bad = check_checksum(no_sum, "d.yaml")
    assert not bad.ok and "mattermost.sha256" in bad.fix
    tarball = tmp_path / "mm.tar.gz"
    tarball.write_bytes(b"not the release")
    wrong = deployment(moto, mattermost={"sha256": SHA, "tarball_file": str(tarball)})
    assert not check_checksum(wrong, "d.yaml").ok
    import hashlib

    real = hashlib.sha256(b"not the release").hexdigest()
    right = deployment(moto, mattermost={"sha256": real, "tarball_file": str(tarball)})
    assert check_checksum(right, "d.yaml").ok

    assert check_cidrs(small, "d.yaml").ok
    for cidr in ("10.0.0.0/8", "192.0.2.10/32"):  # private but wide; init's placeholder
        wide = deployment(moto, operator_cidrs=["203.0.113.7/32", cidr])
        bad = check_cidrs(wide, "d.yaml")
        assert not bad.ok and cidr in bad.detail and "operator_cidrs" in bad.fix, cidr
    allowed = deployment(moto, operator_cidrs=["0.0.0.0/1"], allow_wide_operator_cidrs=True)
    ok = check_cidrs(allowed, "d.yaml")
    assert ok.ok and "allowed by allow_wide_operator_cidrs" in ok.detail


def test_terraform_and_its_provider(server, tmp_path, monkeypatch) -> None:
    moto, _ = server
    monkeypatch.delenv("MMLOAD_TF_PLUGIN_DIR", raising=False)
    ok = check_terraform(deployment(moto, terraform={"plugin_dir": PLUGIN_DIR}))
    assert ok.ok and "hashicorp/aws" in ok.detail, ok
    empty = tmp_path / "mirror"
    empty.mkdir()
    bad = check_terraform(deployment(moto, terraform={"plugin_dir": str(empty)}))
    assert not bad.ok and "no hashicorp/aws provider" in bad.detail
    missing = check_terraform(deployment(moto, terraform={"binary": "no-such-terraform"}))
    assert not missing.ok and "cannot run" in missing.detail and "install Terraform" in missing.fix


def test_check_lines() -> None:
    assert Check("x", True, "fine").line() == "PASS x: fine"
    assert Check("x", False, "broken", "do y").line() == "FAIL x: broken; fix: do y"


def test_preflight_command_lines_and_exit_codes(server, tmp_path) -> None:
    moto, _ = server
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "MMLOAD_TF_PLUGIN_DIR": PLUGIN_DIR,
    }
    import os

    env = {**os.environ, **env}
    data = deployment(moto).model_dump(mode="json", exclude_defaults=True)
    (tmp_path / "deployment.yaml").write_text(json.dumps(data))
    done = cli("preflight", "-c", "deployment.yaml", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [ln.split()[0] for ln in lines[:-1]] == ["PASS"] * (len(lines) - 1)
    assert len(lines) == 8 and "all 7 checks passed" in lines[-1]
    assert not (tmp_path / ".deployments" / "mm-pre" / "zones.json").exists()  # only `up` keeps

    data["mattermost"] = {"unlicensed": True}
    (tmp_path / "deployment.yaml").write_text(json.dumps(data))
    failed = cli("preflight", "-c", "deployment.yaml", cwd=tmp_path, env=env)
    assert failed.returncode == 1 and "FAIL tarball checksum" in failed.stdout
    assert failed.stderr.strip() == "mmload: error: preflight: 1 of 7 checks failed"

    data["tier"] = 123
    (tmp_path / "deployment.yaml").write_text(json.dumps(data))
    bad = cli("preflight", "-c", "deployment.yaml", cwd=tmp_path, env=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "deployment.yaml" in bad.stderr and "tier" in bad.stderr
    assert "Traceback" not in bad.stderr
