"""The component registry drives provisioning: templates, security groups and their rules (data
beside each template), sizing and cost lines, and the outputs' host roles.

The registry is also checked against the repository (every component has its template, rules and
sizing field; no template or rules file belongs to no component). The one independent list of
expected components is in test_config_cli.py (the rendered files), so the registry itself is
tested too. A component added to a copy of the registry appears in every seam.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mmload.config import components
from mmload.config.catalog import load_prices
from mmload.config.components import (
    REGISTRY_ENV,
    REGISTRY_FILE,
    ComponentRules,
    load_rules,
    registry,
    resolve_rules,
)
from mmload.config.deployment import Deployment
from mmload.errors import UserError
from mmload.provision import render as render_mod
from mmload.provision.render import TEMPLATE_DIR, render
from mmload.provision.sizing import Sizing, cost_lines, resolve
from tests.provision.conftest import OPERATOR, cli, require_tools, tf_env

SIZE_FIELDS = {"tier", "target_users", "users_per_agent"}  # Sizing fields that are no component


def deployment(**fields) -> Deployment:
    return Deployment.model_validate(
        {"name": "mm-reg", "tier": 200000, "operator_cidrs": [OPERATOR], "owner": "ci", **fields}
    )


def resources(text: str, kind: str) -> list[str]:
    return re.findall(rf'^resource "{kind}" "(\w+)"', text, flags=re.M)


def host_roles(outputs_tf: str) -> dict[str, str]:
    block = re.search(r"host_roles = \{\n(.*?)\n  \}", outputs_tf, flags=re.S)
    assert block, outputs_tf
    pairs = re.findall(r"^\s+(\w+)\s+= aws_instance\.(\w+)$", block.group(1), flags=re.M)
    return dict(pairs)


# -- the registry against the repository ------------------------------------------------------


def test_every_template_belongs_to_the_registry_and_back() -> None:
    reg = registry()
    on_disk = {p.name.removesuffix(".tf.j2") for p in TEMPLATE_DIR.glob("*.tf.j2")}
    assert set(reg.templates) == on_disk
    assert len(reg.templates) == len(on_disk)  # each rendered once


def test_every_security_group_has_its_rules_beside_its_template() -> None:
    reg = registry()
    with_group = {c.template for c in reg.components if c.security_group}
    rule_files = {p.name.removesuffix(".rules.yaml") for p in TEMPLATE_DIR.glob("*.rules.yaml")}
    assert rule_files == with_group
    rules = load_rules(TEMPLATE_DIR, reg)
    assert set(rules) == {c.name for c in reg.components if c.security_group}
    assert all(r.ingress for r in rules.values())  # a group nothing can reach is a mistake


def test_every_sized_component_is_a_sizing_field_and_back() -> None:
    reg = registry()
    sized = {c.sizing for c in reg.components if c.sizing}
    assert sized == {f.name for f in dataclasses.fields(Sizing)} - SIZE_FIELDS
    sizing = resolve(deployment())
    for comp in reg.components:
        count, kind = sizing.nodes(comp)
        assert count >= 1 and (kind or comp.sizing is None), comp.name


def test_cost_lines_are_the_priced_components_present() -> None:
    sizing = resolve(deployment(components={"search": False}))
    lines = cost_lines(sizing, "aurora-postgresql", load_prices(), nat_gateway=False)
    priced = [c.name for c in registry().components if c.price and c.name in sizing.present()]
    assert [line.component for line in lines] == priced
    assert "search" not in priced and "cache" in priced  # the 200,000 tier has Redis
    assert all(line.unit_price for line in lines)  # every shipped type is priced


def test_rendered_groups_rules_and_host_roles_follow_the_registry(tmp_path: Path) -> None:
    reg = registry()
    rendered = render(deployment(), tmp_path)
    assert [p.stem for p in rendered.files] == list(reg.templates)
    sg_text = (tmp_path / "security_groups.tf").read_text()
    assert set(resources(sg_text, "aws_security_group")) == {
        c.security_group for c in reg.components if c.security_group
    }
    expected = resolve_rules(reg, load_rules(TEMPLATE_DIR, reg), rendered.sizing.present())
    assert sorted(resources(sg_text, "aws_security_group_rule")) == sorted(r.name for r in expected)
    roles = host_roles((tmp_path / "outputs.tf").read_text())
    assert roles == {c.group: c.name for c in reg.host_components}
    for comp in reg.host_components:
        node = (tmp_path / f"{comp.template}.tf").read_text()
        assert resources(node, "aws_instance") == [comp.name]
        assert f"[aws_security_group.{comp.security_group}.id]" in node
    jump = f"ssh_jump_host        = aws_instance.{reg.jump_host}[0].public_ip"
    assert jump in (tmp_path / "outputs.tf").read_text()


def test_one_rule_renders_from_its_data(tmp_path: Path) -> None:
    render(deployment(operator_cidrs=[OPERATOR, "198.51.100.0/24"]), tmp_path)
    text = (tmp_path / "security_groups.tf").read_text()
    block = text.split('resource "aws_security_group_rule" "app_cluster_udp" {\n')[1].split("}")[0]
    assert block.split("\n")[:-1] == [
        "  security_group_id = aws_security_group.app.id",
        '  type              = "ingress"',
        '  description       = "Mattermost gossip"',
        '  protocol          = "udp"',
        "  from_port         = 8074",
        "  to_port           = 8074",
        "  self              = true",
    ]
    ssh = text.split('"coordinator_ssh_operator" {\n')[1].split("}")[0]
    assert 'cidr_blocks       = ["203.0.113.7/32", "198.51.100.0/24"]' in ssh
    vpc = text.split('"metrics_egress_vpc" {\n')[1].split("}")[0]
    assert '"-1"' in vpc and "from_port         = 0" in vpc and "[local.vpc_cidr]" in vpc


# -- switching a component off is a sizing concern ----------------------------------------------


def test_a_component_sized_to_nothing_is_absent_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sizing a host component (here the proxy) to zero removes its instances, security group,
    rules, the rules naming it, its host role and its cost line; the templates need no edit."""
    dep = deployment(tier=2000)
    full = resolve(dep)
    no_proxy = dataclasses.replace(full, proxy=full.proxy.model_copy(update={"count": 0}))
    monkeypatch.setattr(render_mod, "resolve", lambda _dep: no_proxy)
    render(dep, tmp_path)
    sg = (tmp_path / "security_groups.tf").read_text()
    assert "proxy" not in resources(sg, "aws_security_group")
    assert not [r for r in resources(sg, "aws_security_group_rule") if "proxy" in r]
    assert "aws_security_group.proxy" not in sg  # app_http_proxy names the proxy: dropped
    assert "app_cluster_tcp" in resources(sg, "aws_security_group_rule")
    assert resources((tmp_path / "proxy.tf").read_text(), "aws_instance") == []
    assert "proxy" not in host_roles((tmp_path / "outputs.tf").read_text())
    lines = cost_lines(no_proxy, "aurora-postgresql", load_prices())
    assert "proxy" not in [line.component for line in lines]


def test_search_and_cache_groups_follow_their_sizing() -> None:
    reg = registry()
    rules = load_rules(TEMPLATE_DIR, reg)
    for dep, search, cache in (
        (deployment(tier=2000), True, False),
        (deployment(tier=2000, components={"search": False}), False, False),
        (deployment(tier=200000), True, True),
    ):
        present = resolve(dep).present()
        names = {r.name for r in resolve_rules(reg, rules, present)}
        assert ("search_https_app" in names) is search
        assert ("cache_redis_app" in names) is cache


# -- the rules are data with one-line errors ---------------------------------------------------


@pytest.fixture
def template_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "terraform"
    shutil.copytree(TEMPLATE_DIR, dest)
    return dest


def edit_rules(directory: Path, template: str, edit) -> Path:
    path = directory / f"{template}.rules.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("template", "edit", "field", "message"),
    [
        (
            "proxy",
            lambda d: d["ingress"][1].update({"from": "anywhere"}),
            "ingress[1]",
            "ingress from anywhere",
        ),
        (
            "app",
            lambda d: d["ingress"][0].update({"from": {"component": "file_storage"}}),
            "ingress[0].from.component",
            "not a component with a security group",
        ),
        (
            "app",
            lambda d: d["ingress"][0].update({"from": "coordinator"}),
            "ingress[0].from",
            "expected self, operators, vpc, anywhere",
        ),
        ("app", lambda d: d["ingress"][2].update(ports=[8075, 8074]), "ingress[2]", "ports"),
        ("app", lambda d: d["egress"][0].update(ports=443), "egress[0]", "protocol all"),
        ("cache", lambda d: d["ingress"][0].pop("ports"), "ingress[0]", "needs ports"),
        ("cache", lambda d: d["ingress"][0].update(proto="tcp"), "ingress[0].proto", "unknown"),
        (
            "database",
            lambda d: d["ingress"].append(copy.deepcopy(d["ingress"][0])),  # no YAML alias
            "(top level)",
            "unique: postgres_app",
        ),
    ],
)
def test_a_bad_rule_is_one_line_naming_file_and_field(
    template_copy: Path, template, edit, field, message
) -> None:
    path = edit_rules(template_copy, template, edit)
    with pytest.raises(UserError) as err:
        load_rules(template_copy, registry())
    line = err.value.one_line()
    assert line.startswith(f"{path}: {field}"), line
    assert message in line and "\n" not in line


def test_missing_or_stray_rules_files_are_named(template_copy: Path) -> None:
    (template_copy / "search.rules.yaml").unlink()
    with pytest.raises(UserError, match="missing: the rules of component search"):
        load_rules(template_copy, registry())
    shutil.copy(TEMPLATE_DIR / "search.rules.yaml", template_copy)
    (template_copy / "file_storage.rules.yaml").write_text("ingress: []\n")
    with pytest.raises(UserError, match="file_storage has no security group"):
        load_rules(template_copy, registry())


def test_registry_mistakes_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = yaml.safe_load(REGISTRY_FILE.read_text())
    data["components"][0].pop("tag")
    path = tmp_path / "components.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(REGISTRY_ENV, str(path))
    with pytest.raises(UserError) as err:
        registry()
    assert err.value.one_line().startswith(f"{path}: components[0]")
    assert "needs tag" in err.value.one_line()


def test_rules_model_reads_every_peer_form() -> None:
    rules = ComponentRules.model_validate(
        {
            "ingress": [
                {"name": "a", "description": "x", "ports": 1, "from": {"component": "app"}},
                {"name": "b", "description": "x", "ports": [2, 3], "from": "self"},
                {"name": "c", "description": "x", "protocol": "udp", "ports": 4, "from": "vpc"},
            ],
            "egress": [{"name": "d", "description": "x", "protocol": "all", "to": "anywhere"}],
        }
    )
    assert [(r.source.kind, r.source.component, r.port_range) for r in rules.ingress] == [
        ("component", "app", (1, 1)),
        ("self", None, (2, 3)),
        ("vpc", None, (4, 4)),
    ]
    assert rules.egress[0].port_range == (0, 0)


# -- a component added to the registry appears in every provisioning seam ---------------------


EXTRA_TEMPLATE = """{% from "_macros.j2" import node_group with context %}
# A test component: one more node group, sized like the coordinator.

{{ node_group("extra", sizing.coordinator, "public_subnet_ids", true, "node", 30) }}
"""
EXTRA_RULES = {
    "ingress": [
        {"name": "ssh_operator", "description": "SSH", "ports": 22, "from": "operators"},
        {
            "name": "thing_app",
            "description": "the thing",
            "ports": 7000,
            "from": {"component": "app"},
        },
    ],
    "egress": [{"name": "egress_vpc", "description": "VPC", "protocol": "all", "to": "vpc"}],
}
EXTRA = {
    "name": "extra",
    "template": "extra",
    "security_group": "extra",
    "hosts": True,
    "group": "extras",
    "tag": "extra",
    "sizing": "coordinator",
    "price": "ec2",
}


def add_extra_component(root: Path) -> tuple[Path, Path]:
    """A copy of the registry and the templates with one more component, ``extra``."""
    templates = root / "terraform"
    shutil.copytree(TEMPLATE_DIR, templates)
    (templates / "extra.tf.j2").write_text(EXTRA_TEMPLATE)
    (templates / "extra.rules.yaml").write_text(yaml.safe_dump(EXTRA_RULES, sort_keys=False))
    data = yaml.safe_load(REGISTRY_FILE.read_text())
    data["components"].append(EXTRA)
    reg_file = root / "components.yaml"
    reg_file.write_text(yaml.safe_dump(data, sort_keys=False))
    return reg_file, templates


def test_an_added_component_is_rendered_sized_and_costed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg_file, templates = add_extra_component(tmp_path)
    monkeypatch.setenv(REGISTRY_ENV, str(reg_file))
    monkeypatch.setattr(render_mod, "TEMPLATE_DIR", templates)
    assert components.registry().component("extra").group == "extras"
    work = tmp_path / "work"
    rendered = render(deployment(tier=2000), work)
    assert resources((work / "extra.tf").read_text(), "aws_instance") == ["extra"]
    sg = (work / "security_groups.tf").read_text()
    assert "extra" in resources(sg, "aws_security_group")
    assert {"extra_ssh_operator", "extra_thing_app", "extra_egress_vpc"} <= set(
        resources(sg, "aws_security_group_rule")
    )
    assert host_roles((work / "outputs.tf").read_text())["extras"] == "extra"
    lines = cost_lines(rendered.sizing, "aurora-postgresql", load_prices())
    assert ("extra", 1) in [(line.component, line.count) for line in lines]


@pytest.mark.slow
def test_an_added_component_renders_valid_terraform_through_the_cli(tmp_path: Path) -> None:
    require_tools()
    reg_file, templates = add_extra_component(tmp_path)
    (tmp_path / "deployment.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "mm-extra",
                "tier": 200,
                "operator_cidrs": [OPERATOR],
                "mattermost": {"unlicensed": True},
            }
        )
    )
    env = {**tf_env(tmp_path), REGISTRY_ENV: str(reg_file), "MMLOAD_TEMPLATE_DIR": str(templates)}
    proc = cli("infra", "validate", "-c", "deployment.yaml", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    work = tmp_path / ".deployments" / "mm-extra"
    assert "extra" in resources((work / "security_groups.tf").read_text(), "aws_security_group")
    fmt = subprocess.run(
        ["terraform", "fmt", "-check", "-diff", "."], cwd=work, capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout
