"""`mmload campaign plan`: deployments, runs, wall time and cost of a campaign file, recomputed
here from the catalog, price and scenario YAML files; the budget refusal; bad input."""

from __future__ import annotations

import copy
import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmload.campaign.plan import build_plan
from mmload.errors import UserError
from tests.campaign.published import PRICES, REPO
from tests.campaign.records import tier_price
from tests.conftest import run_cli

CATALOG = yaml.safe_load((REPO / "mmload" / "catalog" / "architectures.yaml").read_text())
CEILING_S = yaml.safe_load((REPO / "scenarios" / "ceiling.yaml").read_text())["ceiling"][
    "max_duration_s"
]
SHA = "ab" * 32
CAMPAIGN: dict[str, Any] = {
    "name": "esr-h2",
    "versions": [
        {"label": "esr-10.11", "mattermost": {"version": "10.11.17", "sha256": SHA}},
        {"label": "esr-11.7", "mattermost": {"version": "11.7.1", "sha256": SHA}},
    ],
    "architectures": [
        {"tier": 15000},
        {"name": "30k-3app", "tier": 30000, "overrides": {"app_nodes": 3}},
    ],
    "scenarios": [
        {"scenario": "ceiling"},
        {"scenario": "steady", "users": 10000, "duration_s": 1800},
    ],
    "repeats": 2,
    "concurrency": 2,
    "budget_usd": 500,
    "timings": {"deploy_s": 3000, "upgrade_s": 600, "between_runs_s": 120, "destroy_s": 900},
}


def hourly(users: int, extra_app_nodes: int = 0) -> float:
    """A deployment's $/h as the YAML files say: the stack, agents (ceil(users / per agent)),
    coordinator, metrics, NAT gateway."""
    tier = next(t for t in CATALOG["tiers"] if t["users"] == users)
    lt, ec2 = CATALOG["load_test"], PRICES["ec2"]
    agents = math.ceil(users / lt["users_per_agent"])
    return (
        tier_price(users)
        + extra_app_nodes * ec2[tier["app"]["instance_type"]]
        + agents * ec2[lt["agent_instance_type"]]
        + ec2[lt["coordinator_instance_type"]]
        + ec2[lt["metrics_instance_type"]]
        + PRICES["vpc"]["nat_gateway"]
    )


def lifetime_s(c: dict[str, Any], versions: int) -> float:
    t = c["timings"]
    per_version = c["repeats"] * (CEILING_S + 1800)
    runs = versions * 2 * c["repeats"]
    return (
        t["deploy_s"]
        + (versions - 1) * t["upgrade_s"]
        + versions * per_version
        + (runs - 1) * t["between_runs_s"]
        + t["destroy_s"]
    )


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def plan_json(path: Path) -> tuple[int, dict[str, Any], str]:
    res = run_cli("campaign", "plan", str(path), "--json")
    return res.returncode, json.loads(res.stdout), res.stderr


def test_plan_reused_deployments(tmp_path: Path) -> None:
    rc, doc, _ = plan_json(write(tmp_path, CAMPAIGN))
    assert rc == 0 and doc["within_budget"]
    deps = {d["name"]: d for d in doc["deployments"]}
    assert set(deps) == {"esr-h2-a1", "esr-h2-a2"}
    assert deps["esr-h2-a1"]["usd_per_hour"] == pytest.approx(hourly(15000))
    assert deps["esr-h2-a2"]["usd_per_hour"] == pytest.approx(hourly(30000, extra_app_nodes=1))
    life = lifetime_s(CAMPAIGN, versions=2)
    for d in deps.values():
        assert d["versions"] == ["esr-10.11", "esr-11.7"] and d["runs"] == 8
        assert d["lifetime_s"] == pytest.approx(life)
        assert d["start_s"] == 0  # two slots: both at once
    assert doc["wall_s"] == pytest.approx(life)
    want_cost = (hourly(15000) + hourly(30000, 1)) * life / 3600
    assert doc["cost_usd"] == pytest.approx(want_cost)
    # every (architecture, version, scenario, repeat) exactly once
    got = sorted((r["architecture"], r["version"], r["scenario"], r["repeat"]) for r in doc["runs"])
    want = sorted(
        itertools.product(
            ["tier-15000", "30k-3app"], ["esr-10.11", "esr-11.7"], ["ceiling", "steady"], [1, 2]
        )
    )
    assert got == want
    kinds = {r["scenario"]: (r["kind"], r["users"], r["duration_s"]) for r in doc["runs"]}
    assert kinds == {"ceiling": ("ceiling", None, CEILING_S), "steady": ("comparison", 10000, 1800)}
    md = run_cli("campaign", "plan", str(write(tmp_path, CAMPAIGN)))
    assert md.returncode == 0
    assert f"**Expected cost**: ${want_cost:,.2f}" in md.stdout
    assert f"**Expected wall time**: {life / 3600:,.2f} h" in md.stdout


def test_plan_fresh_deployments_one_at_a_time(tmp_path: Path) -> None:
    c = copy.deepcopy(CAMPAIGN) | {"reuse_deployments": False, "concurrency": 1}
    rc, doc, _ = plan_json(write(tmp_path, c))
    assert rc == 0
    names = [d["name"] for d in doc["deployments"]]
    assert names == ["esr-h2-a1v1", "esr-h2-a1v2", "esr-h2-a2v1", "esr-h2-a2v2"]
    life = lifetime_s(c, versions=1)
    ends = [d["end_s"] for d in doc["deployments"]]
    assert ends == pytest.approx([life, 2 * life, 3 * life, 4 * life])  # one slot: in turn
    assert doc["wall_s"] == pytest.approx(4 * life)
    assert doc["cost_usd"] == pytest.approx(2 * (hourly(15000) + hourly(30000, 1)) * life / 3600)
    assert len(doc["runs"]) == 16


def test_plan_refuses_over_budget(tmp_path: Path) -> None:
    life = lifetime_s(CAMPAIGN, versions=2)
    cost = (hourly(15000) + hourly(30000, 1)) * life / 3600
    c = copy.deepcopy(CAMPAIGN) | {"budget_usd": round(cost - 1, 2)}
    path = write(tmp_path, c)
    res = run_cli("campaign", "plan", str(path))
    assert res.returncode == 1
    assert "**Over budget**" in res.stdout and "## Runs" in res.stdout  # the plan is still shown
    lines = res.stderr.strip().splitlines()
    assert lines == [
        f"mmload: error: {path}: budget_usd: the plan costs ${cost:,.2f}, over the cap of "
        f"${cost - 1:,.2f}: refused"
    ]
    rc, doc, _ = plan_json(write(tmp_path, copy.deepcopy(CAMPAIGN) | {"budget_usd": cost + 1}))
    assert rc == 0 and doc["within_budget"]


def mutate(change: str) -> dict[str, Any]:
    c = copy.deepcopy(CAMPAIGN)
    if change == "typo":
        c["architectures"][1]["overides"] = c["architectures"][1].pop("overrides")
    elif change == "tier":
        c["architectures"][0]["tier"] = 12345
    elif change == "sha":
        del c["versions"][1]["mattermost"]["sha256"]
    elif change == "version":
        del c["versions"][0]["mattermost"]["version"]
    elif change == "twice":
        c["versions"][1]["label"] = "esr-10.11"
    elif change == "concurrency":
        c["concurrency"] = 0
    elif change == "scenario":
        c["scenarios"][1]["scenario"] = "no-such-scenario"
    elif change == "ceiling-users":
        c["scenarios"][0]["users"] = 500
    elif change == "budget":
        del c["budget_usd"]
    elif change == "name":
        c["name"] = "a-very-long-campaign-name"
    elif change == "unnamed":
        del c["architectures"][1]["name"]
    elif change == "app-nodes":
        c["architectures"][1]["overrides"]["app_nodes"] = 0
    return c


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ("typo", "architectures[1].overides", "unknown field"),
        ("tier", "architectures[0].tier", "unknown tier 12345"),
        ("sha", "versions[1]", "mattermost.sha256 is required"),
        ("version", "versions[0]", "mattermost.version is required"),
        ("twice", "versions", "'esr-10.11' is listed twice"),
        ("concurrency", "concurrency", "between 1 and 20"),
        ("scenario", "scenarios[1].scenario", "no such scenario"),
        ("ceiling-users", "scenarios[0].users", "a ceiling finds its users"),
        ("budget", "budget_usd", "Field required"),
        ("name", "name", "too long for its deployments' names"),
        ("unnamed", "architectures[1]", "name: required when overrides"),
        ("app-nodes", "architectures[1].overrides.app_nodes", "between 1 and 50"),
    ],
)
def test_bad_campaign_names_file_and_field(
    tmp_path: Path, change: str, field: str, says: str
) -> None:
    path = write(tmp_path, mutate(change))
    with pytest.raises(UserError) as exc:
        build_plan(path)
    assert exc.value.source == str(path)
    assert exc.value.field == field, exc.value.one_line()
    assert says in exc.value.message


def test_bad_campaign_cli_is_one_line_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, mutate("typo"))
    res = run_cli("campaign", "plan", str(path))
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip().splitlines() == [
        f"mmload: error: {path}: architectures[1].overides: unknown field (check the spelling)"
    ]
    res = run_cli("campaign", "plan", str(tmp_path / "missing.yaml"))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
