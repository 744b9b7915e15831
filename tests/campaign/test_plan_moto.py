"""The simulator campaign of test_run.py with real versions and catalog tiers, planned with the
AWS environment pointing at a moto server on 127.0.0.1: the deployments, runs and cost are
recomputed from the YAML files, the budget cap refuses `plan` and `run` alike, and the account
is left as it was — nothing is applied (no instance, VPC, bucket or tagged resource appears)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.campaign.test_plan import SHA, hourly
from tests.campaign.test_run import write_campaign
from tests.conftest import run_cli
from tests.provision.conftest import MotoServer
from tests.provision.conftest import moto as moto  # the provisioning tests' moto fixture


def real_campaign(root: Path) -> dict[str, Any]:
    """test_run.py's campaign file, its profiles replaced by releases, its sizes by tiers."""
    data = yaml.safe_load(write_campaign(root).read_text())
    data["versions"] = [
        {"label": "esr-10.11", "mattermost": {"version": "10.11.17", "sha256": SHA}},
        {"label": "esr-11.7", "mattermost": {"version": "11.7.1", "sha256": SHA}},
    ]
    data["architectures"] = [
        {"tier": 2000},
        {"name": "15k-3app", "tier": 15000, "overrides": {"app_nodes": 3}},
    ]
    data["budget_usd"] = 10_000
    return data


def account(moto: MotoServer) -> dict[str, Any]:
    """What the account holds: instances, VPCs, buckets and tagged resources."""
    ec2 = moto.client("ec2")
    instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    return {
        "instances": len(instances),
        "vpcs": sorted(v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]),
        "buckets": moto.client("s3").list_buckets()["Buckets"],
        "tagged": moto.client("resourcegroupstaggingapi").get_resources()["ResourceTagMappingList"],
    }


def test_real_campaign_plans_against_moto_without_applying(
    tmp_path: Path, moto: MotoServer
) -> None:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    before = account(moto)
    data = real_campaign(tmp_path)
    path = tmp_path / "real.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    res = run_cli("campaign", "plan", str(path), "--json", env=env)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    deps = {d["name"]: d for d in doc["deployments"]}
    assert list(deps) == ["simh2-a1", "simh2-a2"]  # reused: one per architecture
    assert deps["simh2-a1"]["usd_per_hour"] == pytest.approx(hourly(2000))
    assert deps["simh2-a2"]["usd_per_hour"] == pytest.approx(hourly(15000, extra_app_nodes=1))
    t = data["timings"]
    ceiling_s = json.loads((tmp_path / "ceiling.yaml").read_text())["ceiling"]["max_duration_s"]
    life = t["deploy_s"] + t["upgrade_s"] + 4 * ceiling_s + 3 * t["between_runs_s"] + t["destroy_s"]
    for d in deps.values():
        assert d["versions"] == ["esr-10.11", "esr-11.7"] and d["runs"] == 4
        assert d["lifetime_s"] == pytest.approx(life) and d["start_s"] == 0  # 2 at once
    cost = (hourly(2000) + hourly(15000, 1)) * life / 3600
    assert doc["cost_usd"] == pytest.approx(cost) and doc["wall_s"] == pytest.approx(life)
    assert len(doc["runs"]) == 8

    over = copy.deepcopy(data) | {"budget_usd": cost * 0.99}
    path.write_text(yaml.safe_dump(over, sort_keys=False))
    for cmd in ("plan", "run"):
        res = run_cli("campaign", cmd, str(path), env=env)
        assert res.returncode == 1, res.stderr
        (line,) = res.stderr.strip().splitlines()
        assert line == (
            f"mmload: error: {path}: budget_usd: the plan costs ${cost:,.2f}, over the cap of "
            f"${cost * 0.99:,.2f}: refused"
        )
    assert not (tmp_path / "out").exists()
    assert account(moto) == before  # nothing applied
