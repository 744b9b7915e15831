"""`mmload infra check` over real plans: every tier (and the RDS and existing-VPC variants) is
planned once with the real terraform CLI and hashicorp/aws provider against moto (which stands
in for AWS's API; it enforces no security group, which is why the check exists), and the check
reads `terraform show -json`. Mutations of those plans (one rule removed, the agents given the
public address, a world-open rule) must each fail, naming what is missing.
"""

from __future__ import annotations

import copy
import json
import subprocess

import pytest

from mmload.config.components import load_rules, registry
from mmload.config.deployment import Deployment
from mmload.provision.check import FLOWS, check_plan
from mmload.provision.render import TEMPLATE_DIR, render
from tests.provision.conftest import (
    MOTO_UBUNTU_AMI,
    OPERATOR,
    PLUGIN_DIR,
    MotoServer,
    require_tools,
    tf_env,
)
from tests.provision.test_tiers_validate import variants

pytestmark = pytest.mark.slow
# Rules no needed flow depends on (their removal is allowed to pass the check).
NOT_A_FLOW = {
    "proxy_http_operator",  # plain HTTP only redirects to HTTPS
    "proxy_http_agents",
    "agents_egress_https",  # packages and AWS APIs
    "agents_egress_http",
    "app_egress_https",
    "app_egress_http",
    "proxy_egress_https",
    "proxy_egress_http",
    "metrics_egress_https",
    "metrics_egress_http",
    "coordinator_egress_https",
    "coordinator_egress_http",
    # egress to an existing server: only with target: (tests/provision/test_existing_target.py)
    "agents_target",
    "coordinator_target",
    "metrics_target_metrics",
}


def _split(plan: dict, name: str) -> dict:
    """The plan of one child module, shaped as the plan of a root module."""
    planned = next(
        m
        for m in plan["planned_values"]["root_module"]["child_modules"]
        if m["address"] == f"module.{name}"
    )
    config = plan["configuration"]["root_module"]["module_calls"][name]["module"]
    return {"planned_values": {"root_module": planned}, "configuration": {"root_module": config}}


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """`terraform show -json` of each variant: one plan of all of them as child modules (one
    init, one process per provider) against one moto server."""
    require_tools()
    tmp = tmp_path_factory.mktemp("check")
    server = MotoServer(tmp / "moto.log")
    try:
        vpc = server.client("ec2").create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        names = []
        for label, fields in variants().items():
            fields = copy.deepcopy(fields)
            if "network" in fields:
                fields["network"]["existing_vpc_id"] = vpc
            dep = Deployment.model_validate(
                {
                    "name": "mm-check",
                    "operator_cidrs": [OPERATOR],
                    "owner": "ci",
                    "ami_id": MOTO_UBUNTU_AMI,
                    "aws": {"endpoint_url": server.url},
                    **fields,
                }
            )
            render(dep, tmp / "tiers" / label)
            names.append(label)
        root = tmp / "root"
        root.mkdir()
        (root / "main.tf").write_text(
            "".join(f'module "{n}" {{\n  source = "../tiers/{n}"\n}}\n' for n in names)
        )
        env = tf_env(tmp)
        for argv in (
            ["terraform", "init", "-input=false", "-no-color", f"-plugin-dir={PLUGIN_DIR}"],
            ["terraform", "plan", "-input=false", "-no-color", "-out=plan.tfplan"],
        ):
            proc = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        show = subprocess.run(
            ["terraform", "show", "-json", "plan.tfplan"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        server.stop()
    plan = json.loads(show.stdout)
    return {n: _split(plan, n) for n in names}


def _check(plan: dict) -> list:
    return check_plan(plan, [OPERATOR], TEMPLATE_DIR)


def _without(plan: dict, rule: str) -> dict:
    """The plan with aws_security_group_rule.<rule> taken out."""
    out = copy.deepcopy(plan)
    planned = out["planned_values"]["root_module"]
    planned["resources"] = [r for r in planned["resources"] if r["name"] != rule]
    config = out["configuration"]["root_module"]
    config["resources"] = [
        r for r in config["resources"] if r["address"] != f"aws_security_group_rule.{rule}"
    ]
    return out


def test_every_tier_and_variant_passes(plans: dict[str, dict]) -> None:
    assert len(plans) == len(variants())
    for label, plan in plans.items():
        verdicts = _check(plan)
        failed = [v.line() for v in verdicts if not v.ok]
        assert failed == [], (label, failed)
        labels = {v.label for v in verdicts}
        if label == "existing-target":  # agents, coordinator, metrics: no Mattermost flow
            assert not any(
                f.dest in ("app", "proxy", "database") for f in FLOWS if f.label in labels
            )
            continue
        # the flows of the components every deployment has are all there
        for flow in FLOWS:
            if flow.dest not in ("search", "cache"):
                assert flow.label in labels, (label, flow.label)
    big = {v.label for v in _check(plans["tier-200000"])}
    assert {f.label for f in FLOWS} <= big  # 200,000 has OpenSearch and Redis too


# Variants whose network differs: every component (200,000), RDS for PostgreSQL instead of
# Aurora, and an existing VPC (its CIDR read from a data source, no VPC or subnets of its own).
MUTATED = ("tier-200000", "rds-postgres", "existing-vpc")


def _rule_names(plan: dict) -> dict[str, tuple[str, str]]:
    """Every rule of the rules files present in ``plan``: name -> (direction, component)."""
    reg = registry()
    groups = {c.name: c.security_group for c in reg.components}
    planned = {r["name"] for r in plan["planned_values"]["root_module"]["resources"]}
    return {
        f"{groups[comp]}_{r.name}": (direction, comp)
        for comp, rules in load_rules(TEMPLATE_DIR, reg).items()
        for direction, items in (("ingress", rules.ingress), ("egress", rules.egress))
        for r in items
        if f"{groups[comp]}_{r.name}" in planned
    }


@pytest.mark.parametrize("variant", MUTATED)
def test_each_needed_rule_removed_fails_naming_flow_and_rule(
    plans: dict[str, dict], variant: str
) -> None:
    """One rule removed at a time: every failing line is a needed flow (not the world-open
    check) whose receiver (ingress rule) or sender (egress rule) is the rule's component, and
    it names the removed rule."""
    plan = plans[variant]
    names = _rule_names(plan)
    assert len(names) > (30 if variant == "tier-200000" else 25), sorted(names)
    flows = {f.label: f for f in FLOWS}
    for name, (direction, component) in names.items():
        verdicts = [v for v in _check(_without(plan, name)) if not v.ok]
        if name in NOT_A_FLOW:
            assert verdicts == [], (variant, name, [v.line() for v in verdicts])
            continue
        assert verdicts, f"{variant}: removing {name} went unnoticed"
        for v in verdicts:
            assert v.label in flows, (variant, name, v.line())
            flow = flows[v.label]
            end = flow.dest if direction == "ingress" else flow.source
            assert end == component, (variant, name, v.line())
            assert f"aws_security_group_rule.{name}" in v.reason, (variant, name, v.line())


@pytest.mark.parametrize("variant", sorted(variants()))
def test_coordinator_reaches_prometheus_and_fails_without_its_rule(
    plans: dict[str, dict], variant: str
) -> None:
    """Issue 12 item 6: the coordinator's `--prometheus` (the metrics node's private address,
    remote_load.py) needs tcp/9090 into the metrics group from the coordinator's group."""
    (label,) = [
        f.label for f in FLOWS if (f.source, f.dest, f.port) == ("coordinator", "metrics", 9090)
    ]
    verdicts = {v.label: v for v in _check(plans[variant])}
    assert verdicts[label].ok, verdicts[label].line()
    mutated = _without(plans[variant], "metrics_prometheus_coordinator")
    failed = [v.line() for v in _check(mutated) if not v.ok]
    assert failed == [
        f"FAIL {label}: missing aws_security_group_rule.metrics_prometheus_coordinator "
        "(ingress of aws_security_group.metrics)"
    ], failed


def test_agents_given_the_public_address_fail(plans: dict[str, dict]) -> None:
    """Today's bug: the agents sent load to the proxy's public IP, which the proxy's
    agents-group rule never matches."""
    plan = copy.deepcopy(plans["tier-2000"])
    outputs = plan["configuration"]["root_module"]["outputs"]
    refs = outputs["load_targets"]["expression"]["references"]
    outputs["load_targets"]["expression"]["references"] = [
        r.replace("private_ip", "public_ip") for r in refs
    ]
    failed = [v.line() for v in _check(plan) if not v.ok]
    assert len(failed) == 2, failed  # the agents and the coordinator's probe
    assert all("private addresses only" in line for line in failed), failed
    del outputs["load_targets"]
    failed = [v.line() for v in _check(plan) if not v.ok]
    assert len(failed) == 2 and all("load_targets" in line for line in failed), failed


def test_load_targets_name_every_proxy(plans: dict[str, dict]) -> None:
    outputs = plans["tier-200000"]["configuration"]["root_module"]["outputs"]
    refs = set(outputs["load_targets"]["expression"]["references"])
    assert {f"aws_instance.proxy[{i}].private_ip" for i in range(4)} <= refs


def test_world_open_rule_fails(plans: dict[str, dict]) -> None:
    plan = copy.deepcopy(plans["tier-200"])
    planned = plan["planned_values"]["root_module"]["resources"]
    rule = next(r for r in planned if r["name"] == "proxy_http_operator")
    rule["values"]["cidr_blocks"] = ["0.0.0.0/0"]
    failed = [v.line() for v in _check(plan) if not v.ok]
    assert failed == [
        "FAIL nothing else open to the world: aws_security_group_rule.proxy_http_operator: "
        "admits tcp/80-80 from 0.0.0.0/0"
    ]


def test_check_without_a_saved_plan_is_one_line(tmp_path) -> None:
    from tests.provision.conftest import cli, write_deployment

    write_deployment(tmp_path / "deployment.yaml", name="mm-none", tier=200)
    proc = cli("infra", "check", "-c", "deployment.yaml", cwd=tmp_path, env=tf_env(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no saved plan" in lines[0] and "infra plan" in lines[0], lines
