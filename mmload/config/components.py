"""The component registry and the security-group rules each component keeps beside its template.

``components.yaml`` (next to this module) names every component once — its template, security
group, Ansible group and tag, sizing field, price list, whether it has hosts — and render,
inventory, configure's plan, sizing, the outputs' host roles and the CLI help all derive from it.
Each component's rules are data in ``terraform/<template>.rules.yaml``: what may reach its
security group (ingress) and where it may connect (egress). :func:`resolve_rules` flattens them
into :class:`SecurityRule` s for the components present in a deployment.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from mmload.config.base import StrictModel
from mmload.config.loader import load_model
from mmload.errors import UserError

REGISTRY_FILE = Path(__file__).with_name("components.yaml")
REGISTRY_ENV = "MMLOAD_COMPONENTS"  # another registry file (developing a new component)
COMMON_TAG = "common"  # the role every host runs first; not a component's
SEED_TAG = "seed"  # the population import, part of the app's role and run only when asked
# target: the existing server's ports at target.cidrs (deployment.yaml target:); target_metrics:
# its Prometheus and metrics endpoint. Egress only, present only when the deployment has one.
TARGET_PEERS = ("target", "target_metrics")
PEER_WORDS = ("self", "operators", "vpc", "anywhere", *TARGET_PEERS)
NAME = r"^[a-z][a-z0-9_]*$"
RULE_DESCRIPTION = r"^[0-9A-Za-z_ .:/()#,@\[\]+=&;{}!$*-]*$"

PeerKind = Literal["component", "self", "operators", "vpc", "anywhere", "target", "target_metrics"]
Protocol = Literal["tcp", "udp", "all"]
PriceList = Literal["ec2", "database", "opensearch", "elasticache"]


# -- rules -------------------------------------------------------------------------------------


class Peer(StrictModel):
    """The other end of a rule: another component's security group, the component's own group
    (``self``), the operator CIDRs, the VPC CIDR, or anywhere (0.0.0.0/0, egress only).

    Written as ``{component: NAME}`` or one of the words ``self``, ``operators``, ``vpc``,
    ``anywhere``.
    """

    kind: PeerKind
    component: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value not in PEER_WORDS:
                raise ValueError(
                    f"{value!r}: expected {', '.join(PEER_WORDS)} or {{component: NAME}}"
                )
            return {"kind": value}
        if isinstance(value, dict) and set(value) == {"component"}:
            return {"kind": "component", **value}
        return value

    @model_validator(mode="after")
    def _component_named(self) -> Peer:
        if (self.kind == "component") != (self.component is not None):
            raise ValueError("a component peer is written {component: NAME}")
        return self


class _Rule(StrictModel):
    model_config = ConfigDict(populate_by_name=True)  # the peer by its field name or alias

    name: str = Field(pattern=NAME)  # the resource is aws_security_group_rule.<group>_<name>
    # the characters AWS accepts in a security-group rule's description
    description: str = Field(min_length=1, max_length=255, pattern=RULE_DESCRIPTION)
    protocol: Protocol = "tcp"
    ports: tuple[int, int] | None = None  # one port or [from, to]; none with protocol all

    @model_validator(mode="before")
    @classmethod
    def _one_port(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("ports"), int):
            return {**value, "ports": [value["ports"], value["ports"]]}
        return value

    def _target_peer(self) -> bool:
        return False

    @model_validator(mode="after")
    def _port_range(self) -> _Rule:
        if self._target_peer():
            if self.protocol != "tcp" or self.ports is not None:
                raise ValueError("a target rule is tcp without ports (the target's own ports)")
        elif self.protocol == "all":
            if self.ports is not None:
                raise ValueError("protocol all covers every port: give no ports")
        elif self.ports is None:
            raise ValueError(f"protocol {self.protocol} needs ports (one port or [from, to])")
        elif not 0 <= self.ports[0] <= self.ports[1] <= 65535:
            raise ValueError(f"ports {list(self.ports)}: expected 0 <= from <= to <= 65535")
        return self

    @property
    def port_range(self) -> tuple[int, int]:
        """(from, to) as AWS writes it; protocol all is 0-0."""
        return self.ports or (0, 0)


class IngressRule(_Rule):
    """What may reach the component's security group."""

    source: Peer = Field(alias="from")

    @model_validator(mode="after")
    def _not_from_the_world(self) -> IngressRule:
        if self.source.kind == "anywhere":
            raise ValueError("ingress from anywhere (0.0.0.0/0) is refused: name who connects")
        if self.source.kind in TARGET_PEERS:
            raise ValueError(f"{self.source.kind} is for egress only (connections to the target)")
        return self


class EgressRule(_Rule):
    """Where the component may connect."""

    destination: Peer = Field(alias="to")

    def _target_peer(self) -> bool:
        return self.destination.kind in TARGET_PEERS


class ComponentRules(StrictModel):
    """One ``<template>.rules.yaml``."""

    ingress: list[IngressRule] = Field(default_factory=list)
    egress: list[EgressRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> ComponentRules:
        twice = _repeated(r.name for r in (*self.ingress, *self.egress))
        if twice:
            raise ValueError(f"rule names must be unique: {', '.join(twice)}")
        return self


@dataclass(frozen=True)
class SecurityRule:
    """One resolved rule: an ``aws_security_group_rule`` of a present component."""

    component: str
    security_group: str
    direction: Literal["ingress", "egress"]
    name: str  # the Terraform resource name, <security_group>_<rule name>
    description: str
    protocol: Protocol
    from_port: int
    to_port: int
    peer: Peer
    peer_group: str | None  # the peer component's security group (kind component only)


# -- registry ----------------------------------------------------------------------------------


class Component(StrictModel):
    """One part of a deployment and every fact the stages need about it."""

    name: str = Field(pattern=NAME)
    template: str = Field(pattern=NAME)
    security_group: str | None = Field(default=None, pattern=NAME)
    hosts: bool = False
    group: str | None = Field(default=None, pattern=NAME)
    tag: str | None = Field(default=None, pattern=NAME)
    sizing: str | None = Field(default=None, pattern=NAME)
    price: PriceList | None = None
    runs_mmload: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Component:
        if self.hosts:
            needed = ("security_group", "group", "tag", "sizing")
            missing = [f for f in needed if not getattr(self, f)]
            if missing:
                raise ValueError(f"a component with hosts needs {', '.join(missing)}")
        elif self.group or self.tag or self.runs_mmload:
            raise ValueError("group, tag and runs_mmload are for components with hosts")
        if self.price and not self.sizing:
            raise ValueError("a priced component needs a sizing field (its count and type)")
        if self.name in PEER_WORDS:
            raise ValueError(f"{self.name!r} is reserved in rules ({', '.join(PEER_WORDS)})")
        return self


class Registry(StrictModel):
    """The whole ``components.yaml``."""

    before: list[str]
    after: list[str]
    jump_host: str
    components: list[Component] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Registry:
        for what, values in (
            ("component names", [c.name for c in self.components]),
            ("templates", [*self.before, *self.after, *(c.template for c in self.components)]),
            ("security groups", [c.security_group for c in self.components if c.security_group]),
            ("groups", list(self.groups)),
            ("tags", [COMMON_TAG, SEED_TAG, "all", *(c.tag for c in self.components if c.tag)]),
        ):
            twice = _repeated(values)
            if twice:
                raise ValueError(f"{what} must be unique: {', '.join(twice)}")
        if self.jump_host not in {c.name for c in self.host_components}:
            raise ValueError(f"jump_host {self.jump_host!r} is not a component with hosts")
        return self

    def component(self, name: str) -> Component:
        """The component called ``name`` (KeyError if there is none)."""
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def templates(self) -> tuple[str, ...]:
        """Every template to render, in order."""
        return (*self.before, *(c.template for c in self.components), *self.after)

    @property
    def host_components(self) -> tuple[Component, ...]:
        """The components with EC2 hosts, in registry order."""
        return tuple(c for c in self.components if c.hosts)

    @property
    def groups(self) -> tuple[str, ...]:
        """The Ansible inventory groups (= outputs.json hosts keys)."""
        return tuple(c.group for c in self.host_components if c.group)

    @property
    def role_tags(self) -> tuple[str, ...]:
        """The tags `mmload configure --tags` accepts: common, each host component's, seed."""
        return (COMMON_TAG, *(c.tag for c in self.host_components if c.tag), SEED_TAG)

    @property
    def mmload_tags(self) -> frozenset[str]:
        """Tags of the roles that install mmload itself on their hosts."""
        return frozenset(c.tag for c in self.host_components if c.runs_mmload and c.tag)

    @property
    def jump_group(self) -> str:
        """The inventory group of the jump host."""
        return self.component(self.jump_host).group or self.jump_host


def _repeated(values: Any) -> list[str]:
    return sorted(str(v) for v, n in Counter(values).items() if n > 1)


@cache
def _load_registry(path: str) -> Registry:
    return load_model(Registry, path)


def registry() -> Registry:
    """The component registry: ``components.yaml``, or the file ``$MMLOAD_COMPONENTS`` names."""
    return _load_registry(os.environ.get(REGISTRY_ENV) or str(REGISTRY_FILE))


# -- loading and resolving rules ---------------------------------------------------------------


def rules_path(template_dir: Path, component: Component) -> Path:
    """Where a component's rules live: beside its template."""
    return template_dir / f"{component.template}.rules.yaml"


def load_rules(template_dir: Path, reg: Registry) -> dict[str, ComponentRules]:
    """Every component's rules, checked against the registry (a mistake names file and field)."""
    groups = {c.name: c.security_group for c in reg.components}
    out: dict[str, ComponentRules] = {}
    for comp in reg.components:
        path = rules_path(template_dir, comp)
        if comp.security_group is None:
            if path.exists():
                raise UserError(
                    f"component {comp.name} has no security group, so no rules",
                    source=str(path),
                )
            continue
        if not path.is_file():
            raise UserError(
                f"missing: the rules of component {comp.name} (its security group "
                f"{comp.security_group})",
                source=str(path),
            )
        rules = load_model(ComponentRules, path)
        for direction, field in (("ingress", "from"), ("egress", "to")):
            for i, rule in enumerate(getattr(rules, direction)):
                peer = rule.source if direction == "ingress" else rule.destination
                if peer.kind == "component" and not groups.get(peer.component or ""):
                    raise UserError(
                        f"{peer.component!r} is not a component with a security group",
                        source=str(path),
                        field=f"{direction}[{i}].{field}.component",
                    )
        out[comp.name] = rules
    return out


def resolve_rules(
    reg: Registry,
    rules: dict[str, ComponentRules],
    present: set[str],
    target_ports: dict[str, list[int]] | None = None,
) -> list[SecurityRule]:
    """The rules of the present components, without those naming an absent component.

    ``target_ports``: the ports of each target peer (``target``, ``target_metrics``); a target
    rule becomes one rule per port (``<group>_<name>_<port>``), none without ports."""
    out: list[SecurityRule] = []
    target_ports = target_ports or {}
    for comp in reg.components:
        if comp.name not in present or comp.security_group is None:
            continue
        own = rules[comp.name]
        pairs = [("ingress", r, r.source) for r in own.ingress]
        pairs += [("egress", r, r.destination) for r in own.egress]
        for direction, rule, peer in pairs:
            peer_group = None
            if peer.kind == "component":
                if peer.component not in present:
                    continue
                peer_group = reg.component(peer.component or "").security_group
            name = f"{comp.security_group}_{rule.name}"
            ranges = [(name, rule.port_range)]
            if peer.kind in TARGET_PEERS:
                ranges = [(f"{name}_{p}", (p, p)) for p in target_ports.get(peer.kind, [])]
            for rule_name, (low, high) in ranges:
                out.append(
                    SecurityRule(
                        component=comp.name,
                        security_group=comp.security_group,
                        direction=direction,  # type: ignore[arg-type]
                        name=rule_name,
                        description=rule.description,
                        protocol=rule.protocol,
                        from_port=low,
                        to_port=high,
                        peer=peer,
                        peer_group=peer_group,
                    )
                )
    return out
