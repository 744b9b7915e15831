"""Render a deployment's Terraform: one Jinja template per component into its working directory.

The working directory (``<working_dir>/<name>/``) holds the rendered ``*.tf``, the generated SSH
key, ``mmload-meta.json`` (creation time and expiry, fixed at first render so tags stay stable),
and later the state, the saved plan, logs and ``outputs.json``.
"""

from __future__ import annotations

import getpass
import json
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Undefined, pass_environment
from markupsafe import Markup

from mmload.config.components import SecurityRule, load_rules, registry, resolve_rules
from mmload.config.deployment import Deployment
from mmload.errors import UserError
from mmload.provision.sizing import Sizing, resolve
from mmload.resources import resource_dir

TEMPLATE_DIR = resource_dir("terraform", "MMLOAD_TEMPLATE_DIR")
# Every AWS service the templates call, pointed at the emulator when aws.endpoint_url is set.
ENDPOINT_SERVICES = (
    "ec2",
    "elasticache",
    "iam",
    "kms",
    "opensearch",
    "rds",
    "s3",
    "secretsmanager",
    "sts",
)
WORLD = Markup('["0.0.0.0/0"]')  # egress rules "to: anywhere"
KEY_FILE = "id_ed25519"
META_FILE = "mmload-meta.json"
ZONES_FILE = "zones.json"  # the AZs preflight picked from the instance type offerings


@dataclass(frozen=True)
class Rendered:
    """The result of a render: where, what, and the resolved sizes."""

    workdir: Path
    files: list[Path]
    sizing: Sizing
    expires_at: str


# Escaping. The Jinja environment autoescapes with ``finalize``: every ``{{ value }}`` a template
# writes passes ``hcl_finalize``. Text is escaped for the inside of an HCL quoted string (so a
# value can end neither the string, nor the line, nor start an interpolation); numbers are
# written as numbers. Only ``Markup`` (HCL the renderer built itself, e.g. ``hcl_string``'s
# quoted literals and the rules' expressions) goes through unchanged, so a new template variable
# cannot skip the escaping.


def hcl_escape(value: str) -> str:
    """``value`` as the inside of an HCL quoted string: quotes, backslashes and control
    characters escaped, every ``$`` and ``%`` written ``\\u0024``/``\\u0025`` so that no
    template sequence (``${``, ``%{``) can start, whatever text follows the value."""
    out = []
    for ch in value:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch in "$%" or _unprintable(code):
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _unprintable(code: int) -> bool:
    """Control characters, line/paragraph separators and surrogates."""
    return code < 0x20 or 0x7F <= code < 0xA0 or code in (0x2028, 0x2029) or 0xD800 <= code < 0xE000


def hcl_string(value: str) -> Markup:
    """A quoted HCL string literal of ``value`` (escaped by ``hcl_escape``)."""
    return Markup(f'"{hcl_escape(value)}"')


@pass_environment
def hcl_finalize(_env: Environment, value: object) -> Markup:
    """What every ``{{ }}`` writes: trusted HCL as is, numbers as numbers, text escaped."""
    if isinstance(value, Markup):
        return value
    if isinstance(value, Undefined):  # `{{ x if c }}` with c false: "" (a strict one raises)
        return Markup(str(value))
    if isinstance(value, bool):
        raise TypeError("a template wrote a bool: write true/false explicitly")
    if isinstance(value, int | float) and math.isfinite(value):
        return Markup(str(value))
    if isinstance(value, str):
        return Markup(hcl_escape(value))
    raise TypeError(f"a template wrote a {type(value).__name__}; only text and numbers")


def hcl_list(values: list[str]) -> Markup:
    """``["a", "b"]``: a list of HCL string literals (the ``hcl_list`` filter)."""
    return Markup("[" + ", ".join(hcl_string(v) for v in values) + "]")


def hcl_or_null(value: str | None) -> Markup:
    """A quoted HCL string, or ``null`` for None (the ``hcl_or_null`` filter)."""
    return Markup("null") if value is None else hcl_string(value)


def _no_join(*_args: object, **_kwargs: object) -> None:
    """Jinja's ``join`` HTML-escapes under autoescape: refused, ``hcl_list`` instead."""
    raise TypeError("the join filter is not for HCL: use hcl_list (a list of quoted strings)")


def private_dir(workdir: Path) -> None:
    """``workdir`` (and a working_dir mmload creates for it) exists and is 0700: it holds the
    SSH key, the Terraform state and plan."""
    if not workdir.parent.exists():
        workdir.parent.mkdir(mode=0o700, parents=True)
    workdir.mkdir(mode=0o700, exist_ok=True)
    workdir.chmod(0o700)


def ensure_ssh_key(dep: Deployment, workdir: Path, source: str) -> tuple[str, str, str]:
    """(public key, where it came from, private key path) — generated once, or the user's own."""
    if dep.ssh.public_key_file:
        path = Path(dep.ssh.public_key_file).expanduser()
        try:
            public = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UserError(
                f"cannot read {path}: {exc.strerror}", source=source, field="ssh.public_key_file"
            ) from None
        if not public.startswith(("ssh-ed25519 ", "ssh-rsa ", "ecdsa-sha2-")):
            raise UserError("not an OpenSSH public key", source=source, field="ssh.public_key_file")
        if not public.isprintable():
            raise UserError(
                "not an OpenSSH public key (one line of printable text)",
                source=source,
                field="ssh.public_key_file",
            )
        return public, f"given: {path.name}", str(path.with_suffix(""))
    private = workdir / KEY_FILE
    if not private.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        pub = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        (workdir / f"{KEY_FILE}.pub").write_bytes(pub + f" mmload-{dep.name}\n".encode())
    public = (workdir / f"{KEY_FILE}.pub").read_text(encoding="utf-8").strip()
    return public, "generated by mmload", str(private)


def read_zones(workdir: Path) -> list[str]:
    """The AZs preflight picked for this working directory (empty: none picked yet)."""
    path = workdir / ZONES_FILE
    if not path.exists():
        return []
    zones = json.loads(path.read_text(encoding="utf-8")).get("zones", [])
    return [str(z) for z in zones]


def write_zones(workdir: Path, zones: list[str]) -> None:
    """Record the AZs preflight picked; render uses them when deployment.yaml names none."""
    private_dir(workdir)
    (workdir / ZONES_FILE).write_text(json.dumps({"zones": zones}) + "\n", encoding="utf-8")


def with_zones(dep: Deployment, workdir: Path) -> Deployment:
    """deployment.yaml's availability_zones, else those preflight picked, else the default."""
    picked = read_zones(workdir)
    if dep.availability_zones or len(picked) < 2:
        return dep
    return dep.model_copy(update={"availability_zones": picked})


def ensure_meta(dep: Deployment, workdir: Path, now: datetime | None = None) -> dict[str, str]:
    """Creation time and expiry, written at the first render and reused after."""
    path = workdir / META_FILE
    if path.exists():
        meta = json.loads(path.read_text(encoding="utf-8"))
        if meta.get("ttl_hours") == dep.ttl_hours:
            return meta
    now = now or datetime.now(UTC)
    meta = {
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ttl_hours": dep.ttl_hours,
        "expires_at": (now + timedelta(hours=dep.ttl_hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def default_owner() -> str:
    """The local user name, used when deployment.yaml names no owner."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return "unknown"


def tags_for(dep: Deployment, expires_at: str) -> dict[str, str]:
    """The provider default_tags: the mmload: contract tags plus the user's own."""
    return {
        "mmload:deployment": dep.name,
        "mmload:owner": dep.owner or default_owner(),
        "mmload:expires-at": expires_at,
        "mmload:tier": str(dep.tier),
        **dep.tags,
    }


def hcl_rule(
    rule: SecurityRule, operator_cidrs: Markup, target_cidrs: Markup = WORLD
) -> dict[str, Any]:
    """One aws_security_group_rule as ordered (key, HCL value) pairs, aligned like terraform fmt."""
    attrs: list[tuple[str, Markup]] = [
        ("security_group_id", Markup(f"aws_security_group.{rule.security_group}.id")),
        ("type", hcl_string(rule.direction)),
        ("description", hcl_string(rule.description)),
        ("protocol", hcl_string("-1" if rule.protocol == "all" else rule.protocol)),
        ("from_port", Markup(int(rule.from_port))),
        ("to_port", Markup(int(rule.to_port))),
    ]
    peer = rule.peer.kind
    if peer == "component":
        group = Markup(f"aws_security_group.{rule.peer_group}.id")
        attrs.append(("source_security_group_id", group))
    elif peer == "self":
        attrs.append(("self", Markup("true")))
    else:
        cidrs = {
            "operators": operator_cidrs,
            "vpc": Markup("[local.vpc_cidr]"),
            "anywhere": WORLD,
            "target": target_cidrs,
            "target_metrics": target_cidrs,
        }
        attrs.append(("cidr_blocks", cidrs[peer]))
    return {"id": rule.name, "attrs": attrs, "width": max(len(k) for k, _ in attrs)}


def target_ports(dep: Deployment) -> dict[str, list[int]]:
    """The ports of the existing server's addresses, per target peer of the rules (none without
    ``target:``)."""
    if dep.target is None:
        return {}
    return {"target": dep.target.ports(), "target_metrics": dep.target.ports(metrics=True)}


def security_rules(
    present: set[str], operator_cidrs: list[str], dep: Deployment | None = None
) -> tuple[list[str], list[dict]]:
    """The present components' security groups, and their rules (``<template>.rules.yaml``).
    A target rule that repeats another rule of its group (HTTPS to anywhere) is left out: AWS
    refuses a duplicate rule."""
    reg = registry()
    groups = [c.security_group for c in reg.components if c.security_group and c.name in present]
    ports = target_ports(dep) if dep else {}
    rules = resolve_rules(reg, load_rules(TEMPLATE_DIR, reg), present, ports)
    ops = hcl_list(operator_cidrs)
    targets = hcl_list(dep.target.cidrs) if dep and dep.target and dep.target.cidrs else WORLD
    out, seen = [], set()
    for rule in rules:
        hcl = hcl_rule(rule, ops, targets)
        same = tuple((k, str(v)) for k, v in hcl["attrs"] if k != "description")
        if same in seen:
            continue
        seen.add(same)
        out.append(hcl)
    return groups, out


def context(dep: Deployment, workdir: Path, source: str) -> dict[str, Any]:
    """Everything the templates see."""
    sizing = resolve(dep)
    meta = ensure_meta(dep, workdir)
    public_key, key_origin, private_path = ensure_ssh_key(dep, workdir, source)
    tags = tags_for(dep, meta["expires_at"])
    quoted = {hcl_string(k): hcl_string(v) for k, v in tags.items()}
    width = max(len(k) for k in quoted)
    reg = registry()
    present = sizing.present(reg)
    groups, rules = security_rules(present, dep.operator_cidrs, dep)
    hosts = [c for c in reg.host_components if c.name in present]
    return {
        "dep": dep,
        "db": dep.database,
        "net": dep.network,
        "sizing": sizing,
        "meta": meta,
        "tag_lines": [(Markup(k.ljust(width)), v) for k, v in quoted.items()],
        "endpoint_services": ENDPOINT_SERVICES,
        "endpoint_width": max(len(s) for s in ENDPOINT_SERVICES),
        "state_key": dep.terraform.state_key or f"mmload/{dep.name}/terraform.tfstate",
        "ssh_public_key": public_key,
        "key_origin": key_origin,
        "ssh_private_key_path": private_path,
        "sg_roles": groups,
        "sg_rules": rules,
        "host_components": hosts,
        "host_width": max((len(c.group or "") for c in hosts), default=0),
        "jump_host": reg.jump_host,
        "monitoring": dep.components.detailed_monitoring,
    }


def environment() -> Environment:
    """The Jinja environment over terraform/: strict (a missing variable is an error) and every
    written value escaped by ``hcl_finalize`` (autoescape keeps macro output, already escaped,
    as it is)."""
    if not (TEMPLATE_DIR / "providers.tf.j2").is_file():
        raise UserError(
            f"Terraform templates not found in {TEMPLATE_DIR} (set MMLOAD_TEMPLATE_DIR to the "
            "repository's terraform/ folder)"
        )
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=True,
        finalize=hcl_finalize,
    )
    env.filters.update(hcl_list=hcl_list, hcl_or_null=hcl_or_null, join=_no_join)
    return env


def render(dep: Deployment, workdir: Path, source: str = "deployment.yaml") -> Rendered:
    """Render every template of the component registry into ``workdir``; remove stale ``*.tf``."""
    private_dir(workdir)
    ctx = context(with_zones(dep, workdir), workdir, source)
    env = environment()
    written = []
    for template in registry().templates:
        text = env.get_template(f"{template}.tf.j2").render(ctx)
        path = workdir / f"{template}.tf"
        path.write_text(_tidy(text), encoding="utf-8")
        written.append(path)
    for stale in set(workdir.glob("*.tf")) - set(written):
        stale.unlink()
    return Rendered(workdir, written, ctx["sizing"], ctx["meta"]["expires_at"])


def _tidy(text: str) -> str:
    """Collapse runs of blank lines left by template conditionals; end with one newline."""
    out: list[str] = []
    for line in text.splitlines():
        if line.strip() == "" and (not out or out[-1] == ""):
            continue
        out.append(line.rstrip())
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"
