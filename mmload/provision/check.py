"""`mmload infra check`: prove, from a saved plan, that every network flow the system needs is
allowed under AWS's security-group semantics, and that nothing is open to the world.

The input is ``terraform show -json`` of the saved plan. Planned values give each rule's type,
protocol, ports and CIDRs; the configuration's references give what plans cannot know yet (which
security group a rule belongs to, which group it names as its peer, which groups a node joins).

AWS semantics applied (VPC user guide, "Security group rules" and "security group referencing"):
a rule naming a security group matches traffic from that group's members' *private* addresses
only; traffic sent to a node's *public* address leaves the VPC through the internet gateway and
arrives from the sender's public address, which only a CIDR rule can match. Security groups are
stateful: replies are always allowed, so a flow needs the sender's egress and the receiver's
ingress.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mmload.config.components import Registry, SecurityRule, load_rules, registry, resolve_rules

OPERATORS = "operators"
PRIVATE_NETS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
WORLD = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
SG_REF = re.compile(r"^aws_security_group\.([A-Za-z0-9_-]+)\.id$")
LOAD_TARGETS_OUTPUT = "load_targets"
SCRAPE_TARGETS_OUTPUT = "scrape_targets"  # the existing server's Prometheus / metrics endpoint
ENI_REF = re.compile(r"^aws_network_interface\.([A-Za-z0-9_-]+)")
ADDRESS_REF = re.compile(r"^aws_instance\.([A-Za-z0-9_-]+)\[\d+\]\.(private_ip|public_ip)$")


@dataclass(frozen=True)
class Flow:
    """One connection the system needs: ``source`` (a component or operators) opens
    ``protocol/port`` to ``dest`` on its ``address`` ("private", "public" or "load_target":
    whichever address the plan's ``load_targets`` output gives the agents)."""

    source: str
    dest: str
    port: int
    why: str
    protocol: str = "tcp"
    address: str = "private"

    @property
    def label(self) -> str:
        return f"{self.source} → {self.dest} {self.protocol}/{self.port} ({self.why})"


# Every flow mmload needs; a flow whose source or destination is absent from the plan is skipped.
FLOWS: tuple[Flow, ...] = (
    Flow(OPERATORS, "coordinator", 22, "SSH jump host", address="public"),
    Flow(OPERATORS, "proxy", 22, "SSH, configure", address="public"),
    Flow(OPERATORS, "agents", 22, "SSH, configure", address="public"),
    Flow(OPERATORS, "metrics", 22, "SSH, configure", address="public"),
    Flow(OPERATORS, "proxy", 443, "Mattermost and Grafana over TLS", address="public"),
    Flow("proxy", "metrics", 3000, "Grafana behind the proxy"),
    Flow("coordinator", "app", 22, "SSH through the jump host"),
    Flow("agents", "proxy", 443, "load target", address="load_target"),
    Flow("coordinator", "proxy", 443, "load target probe", address="load_target"),
    Flow("agents", "coordinator", 5557, "Locust master port"),
    Flow("coordinator", "metrics", 9090, "Prometheus for server-side SLOs"),
    Flow("proxy", "app", 8065, "Mattermost behind nginx"),
    Flow("metrics", "app", 8067, "Mattermost metrics"),
    Flow("metrics", "app", 9100, "node_exporter"),
    Flow("metrics", "proxy", 9100, "node_exporter"),
    Flow("metrics", "agents", 9100, "node_exporter"),
    Flow("metrics", "coordinator", 9100, "node_exporter"),
    Flow("app", "database", 5432, "PostgreSQL"),
    Flow("coordinator", "database", 5432, "PostgreSQL, seed and checks"),
    Flow("app", "search", 443, "OpenSearch"),
    Flow("app", "cache", 6379, "Redis"),
    Flow("app", "app", 8074, "cluster gossip", protocol="udp"),
    Flow("app", "app", 8074, "cluster gossip", protocol="tcp"),
    Flow("app", "app", 8075, "cluster messages"),
)


@dataclass(frozen=True)
class Rule:
    """One security-group rule, from the plan or from a rules file."""

    address: str  # aws_security_group_rule.<name>
    group: str  # the security group it belongs to
    direction: str  # ingress | egress
    protocol: str  # tcp | udp | all
    from_port: int
    to_port: int
    peer_group: str | None = None
    self_ref: bool = False
    cidrs: tuple[str, ...] = ()
    vpc_cidr: bool = False  # the CIDR is the VPC's own (local.vpc_cidr)

    def admits(self, protocol: str, port: int) -> bool:
        return self.protocol in ("all", protocol) and (
            self.protocol == "all" or self.from_port <= port <= self.to_port
        )

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        out = []
        for c in self.cidrs:
            try:
                out.append(ipaddress.ip_network(c, strict=False))
            except ValueError:
                continue
        return out


@dataclass
class Network:
    """What the plan builds: security groups, their members, rules and the agents' address."""

    groups: set[str] = field(default_factory=set)
    members: dict[str, set[str]] = field(default_factory=dict)  # group -> member resources
    public: set[str] = field(default_factory=set)  # groups with a member holding a public IP
    rules: list[Rule] = field(default_factory=list)
    vpc_cidr: str | None = None
    load_target: str | None = None  # "private" | "public" | None (no load_targets output)
    # An existing server as the target: the URLs the load_targets and scrape_targets outputs
    # name as constants (no proxy of this deployment).
    external: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """One line of the check."""

    ok: bool
    label: str
    reason: str = ""

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.label}" + (
            f": {self.reason}" if self.reason else ""
        )


# -- reading the plan -------------------------------------------------------------------------


def _refs(expr: Any) -> Iterator[str]:
    """Every reference inside an expression tree of the plan's configuration."""
    if isinstance(expr, dict):
        for key, value in expr.items():
            if key == "references" and isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))
            else:
                yield from _refs(value)
    elif isinstance(expr, list):
        for item in expr:
            yield from _refs(item)


def _sg_refs(expr: Any) -> list[str]:
    return [m.group(1) for r in _refs(expr) if (m := SG_REF.match(r))]


def _protocol(value: Any) -> str:
    text = str(value).lower()
    return {"-1": "all", "6": "tcp", "17": "udp"}.get(text, text)


def _planned(module: dict) -> Iterator[dict]:
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from _planned(child)


def network_from_plan(plan: dict) -> Network:
    """The network a ``terraform show -json`` plan of one root module builds."""
    return network_from_module(
        plan.get("planned_values", {}).get("root_module", {}),
        plan.get("configuration", {}).get("root_module", {}),
    )


def network_from_module(planned: dict, config: dict) -> Network:
    """The network of one module: its planned values and its configuration."""
    net = Network()
    exprs = {r["address"]: r.get("expressions", {}) for r in config.get("resources", [])}
    interface_groups: dict[str, set[str]] = {}  # aws_network_interface name -> its groups
    eip_interfaces: set[str] = set()  # aws_network_interface names an aws_eip is on
    for res in _planned(planned):
        prefix = "data." if res.get("mode") == "data" else ""
        base = f"{prefix}{res['type']}.{res['name']}"
        values = res.get("values") or {}
        expr = exprs.get(base, {})
        kind = res["type"]
        if kind == "aws_security_group":
            net.groups.add(res["name"])
            net.rules.extend(_inline_rules(res["name"], values))
        elif kind == "aws_security_group_rule":
            rule = _plan_rule(base, values, expr)
            if rule is not None:
                net.rules.append(rule)
        elif kind == "aws_vpc":
            net.vpc_cidr = values.get("cidr_block") or net.vpc_cidr
        elif kind == "aws_eip":
            eip_interfaces.update(m.group(1) for r in _refs(expr) if (m := ENI_REF.match(r)))
        else:
            for group in _sg_refs(expr):
                net.members.setdefault(group, set()).add(res["address"])
                if kind == "aws_instance" and values.get("associate_public_ip_address"):
                    net.public.add(group)
                if kind == "aws_network_interface":
                    interface_groups.setdefault(res["name"], set()).add(group)
    for interface in eip_interfaces:  # an Elastic IP on a group's own interface: public
        net.public.update(interface_groups.get(interface, set()))
    net.load_target = _load_target_kind(config)
    net.external = _external_urls(config)
    return net


def _external_urls(config: dict) -> dict[str, list[str]]:
    """The constant URLs of the load_targets and scrape_targets outputs (an existing server)."""
    out = {}
    for name in (LOAD_TARGETS_OUTPUT, SCRAPE_TARGETS_OUTPUT):
        value = config.get("outputs", {}).get(name, {}).get("expression", {})
        urls = value.get("constant_value") if isinstance(value, dict) else None
        if isinstance(urls, list):
            out[name] = [u for u in urls if isinstance(u, str)]
    return out


def _plan_rule(address: str, values: dict, expr: dict) -> Rule | None:
    groups = _sg_refs(expr.get("security_group_id"))
    if not groups:
        return None
    peer = _sg_refs(expr.get("source_security_group_id"))
    cidrs = tuple(values.get("cidr_blocks") or ()) + tuple(values.get("ipv6_cidr_blocks") or ())
    vpc = any(r == "local.vpc_cidr" for r in _refs(expr.get("cidr_blocks")))
    return Rule(
        address=address,
        group=groups[0],
        direction=str(values.get("type") or expr.get("type", {}).get("constant_value")),
        protocol=_protocol(values.get("protocol")),
        from_port=int(values.get("from_port") or 0),
        to_port=int(values.get("to_port") or 0),
        peer_group=peer[0] if peer else None,
        self_ref=bool(values.get("self")),
        cidrs=cidrs,
        vpc_cidr=vpc,
    )


def _inline_rules(group: str, values: dict) -> list[Rule]:
    out = []
    for direction in ("ingress", "egress"):
        for i, block in enumerate(values.get(direction) or []):
            out.append(
                Rule(
                    address=f"aws_security_group.{group}.{direction}[{i}]",
                    group=group,
                    direction=direction,
                    protocol=_protocol(block.get("protocol")),
                    from_port=int(block.get("from_port") or 0),
                    to_port=int(block.get("to_port") or 0),
                    self_ref=bool(block.get("self")),
                    cidrs=tuple(block.get("cidr_blocks") or ())
                    + tuple(block.get("ipv6_cidr_blocks") or ()),
                )
            )
    return out


def _load_target_kind(config: dict) -> str | None:
    """Which proxy address the ``load_targets`` output gives the agents."""
    out = config.get("outputs", {}).get(LOAD_TARGETS_OUTPUT)
    if out is None:
        return None
    kinds = {m.group(2) for r in _refs(out) if (m := ADDRESS_REF.match(r))}
    if kinds == {"private_ip"}:
        return "private"
    if "public_ip" in kinds:
        return "public"
    return None


# -- the rules files, to name what is missing -------------------------------------------------


def expected_rules(
    reg: Registry, template_dir: Path, present: set[str], operators: list[str]
) -> list[Rule]:
    """The rules the rules files (``terraform/<c>.rules.yaml``) give the present components."""
    rules = resolve_rules(reg, load_rules(template_dir, reg), present)
    return [_file_rule(r, tuple(operators)) for r in rules]


def _file_rule(r: SecurityRule, operators: tuple[str, ...]) -> Rule:
    kind = r.peer.kind
    return Rule(
        address=f"aws_security_group_rule.{r.name}",
        group=r.security_group,
        direction=r.direction,
        protocol=r.protocol,
        from_port=r.from_port,
        to_port=r.to_port,
        peer_group=r.peer_group,
        self_ref=kind == "self",
        cidrs={"anywhere": ("0.0.0.0/0",), "operators": operators}.get(kind, ()),
        vpc_cidr=kind == "vpc",
    )


# -- evaluating flows -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ends:
    """Where a flow starts and ends, in security-group terms."""

    src: str | None  # the source's group (None: operators)
    dst: str
    public: bool  # sent to the destination's public address


def _ingress_ok(
    rule: Rule, ends: _Ends, flow: Flow, operators: list[str], vpc: str | None = None
) -> bool:
    if rule.direction != "ingress" or rule.group != ends.dst:
        return False
    if not rule.admits(flow.protocol, flow.port):
        return False
    if ends.src is None:  # operators, over the internet
        nets = rule.networks()
        return all(_covered(c, nets) for c in operators) and bool(operators)
    if ends.public:  # arrives from the sender's public address: only the world matches it
        return any(n.prefixlen == 0 for n in rule.networks())
    if rule.peer_group == ends.src or (rule.self_ref and ends.src == ends.dst):
        return True
    return _inside_vpc(rule, vpc)


def _inside_vpc(rule: Rule, vpc: str | None) -> bool:
    """A CIDR rule matches private addresses of the VPC when it covers the VPC's CIDR."""
    if rule.vpc_cidr or any(n.prefixlen == 0 for n in rule.networks()):
        return True
    return vpc is not None and _covered(vpc, rule.networks())


def _egress_ok(rule: Rule, ends: _Ends, flow: Flow, vpc: str | None = None) -> bool:
    if rule.direction != "egress" or rule.group != ends.src:
        return False
    if not rule.admits(flow.protocol, flow.port):
        return False
    if any(n.prefixlen == 0 for n in rule.networks()):
        return True
    if ends.public:
        return False
    if rule.peer_group == ends.dst or (rule.self_ref and ends.src == ends.dst):
        return True
    return _inside_vpc(rule, vpc)


def _covered(cidr: str, nets: Iterable) -> bool:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
    return any(net.version == n.version and net.subnet_of(n) for n in nets)


def evaluate(
    net: Network,
    operators: list[str],
    expected: list[Rule] | None = None,
    reg: Registry | None = None,
    flows: Iterable[Flow] = FLOWS,
) -> list[Verdict]:
    """One verdict per flow whose ends are present, then one per world-open ingress rule."""
    reg = reg or registry()
    group_of = {c.name: c.security_group for c in reg.components if c.security_group}
    present = {g for g in net.groups if net.members.get(g)}
    out: list[Verdict] = []
    for flow in flows:
        dst = group_of.get(flow.dest)
        src = None if flow.source == OPERATORS else group_of.get(flow.source)
        if dst not in present or (flow.source != OPERATORS and src not in present):
            continue
        out.append(_flow_verdict(net, flow, _Ends(src, dst, False), operators, expected or []))
    out.extend(_external_verdicts(net, present, group_of))
    out.extend(_world_open(net, operators))
    return out


# Who connects to an existing server's URLs (the outputs naming them), and why.
EXTERNAL_FLOWS = {
    LOAD_TARGETS_OUTPUT: (("agents", "load to the existing server"), ("coordinator", "its probe")),
    SCRAPE_TARGETS_OUTPUT: (("metrics", "the existing server's metrics"),),
}


def _external_verdicts(net: Network, present: set[str], group_of: dict) -> list[Verdict]:
    """One verdict per (source, URL) of an existing server: the source's egress admits it."""
    out = []
    for output, urls in net.external.items():
        for source, why in EXTERNAL_FLOWS[output]:
            group = group_of.get(source)
            if group not in present:
                continue
            for url in urls:
                parts = urlsplit(url)
                host = parts.hostname or ""
                port = parts.port or (443 if parts.scheme == "https" else 80)
                label = f"{source} → {host} tcp/{port} ({why})"
                ok = any(_egress_to(r, group, host, port, net.vpc_cidr) for r in net.rules)
                reason = "" if ok else f"no egress rule of aws_security_group.{group} admits it"
                out.append(Verdict(ok, label, reason))
    return out


def _egress_to(rule: Rule, group: str, host: str, port: int, vpc: str | None) -> bool:
    """An egress rule of ``group`` admits tcp/``port`` to ``host`` (an address it covers, or
    any address when the host is a name: a CIDR rule can only be judged by address)."""
    if rule.direction != "egress" or rule.group != group or not rule.admits("tcp", port):
        return False
    nets = rule.networks()
    if rule.vpc_cidr and vpc:
        nets.append(ipaddress.ip_network(vpc, strict=False))
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return bool(nets)
    return any(address in n for n in nets)


def _flow_verdict(
    net: Network, flow: Flow, ends: _Ends, operators: list[str], expected: list[Rule]
) -> Verdict:
    if flow.address == "load_target":
        if net.load_target is None:
            return Verdict(
                False,
                flow.label,
                f"the plan has no `{LOAD_TARGETS_OUTPUT}` output naming the proxies' addresses",
            )
        ends = _Ends(ends.src, ends.dst, net.load_target == "public")
    elif flow.address == "public":
        ends = _Ends(ends.src, ends.dst, True)
    if ends.public and ends.dst not in net.public:
        return Verdict(False, flow.label, f"{flow.dest} has no public address")
    problems = []
    vpc = net.vpc_cidr
    if not any(_ingress_ok(r, ends, flow, operators, vpc) for r in net.rules):
        problems.append(_missing(flow, ends, "ingress", expected, operators))
    if ends.src is not None and not any(_egress_ok(r, ends, flow, vpc) for r in net.rules):
        problems.append(_missing(flow, ends, "egress", expected, operators))
    if not problems:
        return Verdict(True, flow.label)
    return Verdict(False, flow.label, "; ".join(problems))


def _missing(flow: Flow, ends: _Ends, direction: str, expected: list[Rule], ops: list[str]) -> str:
    group = ends.dst if direction == "ingress" else ends.src
    if direction == "ingress" and ends.public and ends.src is not None:
        return (
            f"{flow.source} are given {flow.dest}'s public address, so packets arrive from "
            f"{flow.source}' public IPs, which a rule naming aws_security_group.{ends.src} does "
            "not match (security group referencing matches private addresses only): give "
            f"{flow.source} the private address"
        )
    for rule in expected:
        ok = (
            _ingress_ok(rule, ends, flow, ops)
            if direction == "ingress"
            else _egress_ok(rule, ends, flow)
        )
        if ok:
            return f"missing {rule.address} ({direction} of aws_security_group.{group})"
    peer = "the operator CIDRs" if ends.src is None else f"aws_security_group.{ends.src}"
    return (
        f"no {direction} rule of aws_security_group.{group} admits {flow.protocol}/{flow.port} "
        f"{'from' if direction == 'ingress' else 'to'} "
        f"{peer if direction == 'ingress' else 'aws_security_group.' + ends.dst}"
    )


def _world_open(net: Network, operators: list[str]) -> list[Verdict]:
    """Ingress from anything but the operator CIDRs and private addresses is world-open."""
    out = []
    for rule in net.rules:
        if rule.direction != "ingress":
            continue
        for cidr in rule.cidrs:
            if _covered(cidr, [ipaddress.ip_network(c, strict=False) for c in operators]):
                continue
            vpc = [ipaddress.ip_network(net.vpc_cidr, strict=False)] if net.vpc_cidr else []
            if _covered(cidr, [*PRIVATE_NETS, *vpc]):
                continue
            ports = "all" if rule.protocol == "all" else f"{rule.from_port}-{rule.to_port}"
            out.append(
                Verdict(
                    False,
                    f"nothing else open to the world: {rule.address}",
                    f"admits {rule.protocol}/{ports} from {cidr}",
                )
            )
    if not out:
        out.append(Verdict(True, "nothing else open to the world"))
    return out


def check_plan(
    plan: dict, operators: list[str], template_dir: Path, reg: Registry | None = None
) -> list[Verdict]:
    """Every verdict for a plan (``terraform show -json``)."""
    reg = reg or registry()
    net = network_from_plan(plan)
    group_of = {c.security_group: c.name for c in reg.components if c.security_group}
    present = {group_of[g] for g in net.groups if g in group_of} | {
        c.name for c in reg.components if not c.security_group
    }
    return evaluate(net, operators, expected_rules(reg, template_dir, present, operators), reg)


def load_plan_json(text: str) -> dict:
    """Parse ``terraform show -json`` output."""
    return json.loads(text)
