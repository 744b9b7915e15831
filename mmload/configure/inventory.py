"""outputs.json (docs/deployment-outputs.md) → an Ansible inventory for ansible/site.yml.

One group per component with hosts (the component registry: ``app``, ``proxy``, ``metrics``,
``agents``, ``coordinator``); deployment facts (database endpoints, search, cache, bucket, site
URL, users) as ``mmload_*`` variables of ``all``.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from mmload.config.components import registry
from mmload.config.loader import validate_model
from mmload.errors import UserError


def groups() -> tuple[str, ...]:
    """The inventory groups: one per component with hosts, in registry order."""
    return registry().groups


def _known_group(name: str) -> str:
    if name not in groups():
        raise ValueError(f"unknown host group {name!r}; known: {', '.join(groups())}")
    return name


Group = Annotated[str, AfterValidator(_known_group)]


class _Out(BaseModel):
    # outputs.json is written by provisioning: tolerate fields added there later.
    model_config = ConfigDict(extra="ignore")


class HostOut(_Out):
    """One provisioned machine."""

    name: str = Field(min_length=1)
    private_ip: str = Field(min_length=1)
    public_ip: str | None = None
    # Every private address of the host, private_ip first: an agent given several
    # (load.agent_private_ips) sends from all of them (`mmload worker --source-address`).
    private_ips: list[str] = Field(default_factory=list)


class DatabaseOut(_Out):
    """The database cluster; the password is never here (master_secret_arn points to it)."""

    engine: str
    writer_endpoint: str = Field(min_length=1)
    reader_endpoints: list[str] = Field(default_factory=list)
    port: int
    name: str
    username: str
    master_secret_arn: str | None = None


class SearchOut(_Out):
    endpoint: str
    nodes: int = Field(default=1, ge=1)  # OpenSearch data nodes (index replicas follow them)


class CacheOut(_Out):
    endpoint: str
    port: int


class BucketOut(_Out):
    name: str
    region: str


class TargetOut(_Out):
    """An existing server as the target (deployment.yaml target:): no Mattermost stack here."""

    url: str = Field(min_length=1)
    prometheus_url: str | None = None  # federated by the metrics node
    metrics_url: str | None = None  # Mattermost's metrics endpoint, scraped by the metrics node


class DeploymentOutputs(_Out):
    """The whole outputs.json."""

    deployment: str
    region: str
    tier: str | int
    ssh_user: str
    ssh_port: int = Field(default=22, ge=1, le=65535)  # every host's SSH port
    ssh_private_key_path: str
    ssh_jump_host: str | None = None
    hosts: dict[Group, list[HostOut]]
    database: DatabaseOut | None = None  # None: an existing server is the target
    search: SearchOut | None = None
    cache: CacheOut | None = None
    bucket: BucketOut | None = None
    proxy_address: str | None = None
    site_url: str
    # Where load goes: every proxy's private address (agents and the coordinator's probe), or
    # the existing server's URL (``target``).
    load_targets: list[str] = Field(default_factory=list)
    target: TargetOut | None = None


def load_outputs(path: str | Path, deployment: str | None = None) -> DeploymentOutputs:
    """Read and validate outputs.json; problems are one-line UserErrors naming the field.

    With ``deployment``, the file must belong to the deployment of that name.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            "not found (run `mmload infra apply` first, or pass --outputs)", source=str(p)
        ) from None
    except json.JSONDecodeError as exc:
        raise UserError(
            f"invalid JSON: {exc.msg}", source=str(p), field=f"line {exc.lineno}"
        ) from None
    if not isinstance(data, dict):
        raise UserError("expected a JSON object", source=str(p))
    outputs = validate_model(DeploymentOutputs, data, str(p))
    if deployment is not None and outputs.deployment != deployment:
        raise UserError(
            f"belongs to deployment {outputs.deployment!r}, not {deployment!r}",
            source=str(p),
            field="deployment",
        )
    return outputs


def resolve_key(outputs: DeploymentOutputs, outputs_path: Path) -> Path:
    """The SSH private key: as written (relative to the working folder), else next to outputs."""
    key = Path(outputs.ssh_private_key_path).expanduser()
    if key.is_absolute() or key.exists():
        return key.resolve()
    beside = outputs_path.resolve().parent / key.name
    return beside if beside.exists() else key.resolve()


def jump_host(outputs: DeploymentOutputs) -> str | None:
    """The public address private nodes are reached through: ssh_jump_host, else the first
    public address of the registry's jump host group (the coordinator), else of any group."""
    if outputs.ssh_jump_host:
        return outputs.ssh_jump_host
    first = registry().jump_group
    for group in sorted(groups(), key=lambda g: g != first):
        for host in outputs.hosts.get(group, []):
            if host.public_ip:
                return host.public_ip
    return None


def host_vars(host: HostOut, *, jump: str | None, user: str, key: Path) -> dict[str, Any]:
    """Connection variables of one host: direct when public, else through the jump host."""
    hv: dict[str, Any] = {
        "ansible_host": host.public_ip or host.private_ip,
        "mmload_private_ip": host.private_ip,
        "mmload_private_ips": host.private_ips or [host.private_ip],
    }
    if not host.public_ip and jump:
        proxy_cmd = (
            f"ssh -i {shlex.quote(str(key))} -o StrictHostKeyChecking=accept-new "
            f"-W %h:%p {shlex.quote(user)}@{jump}"
        )
        hv["ansible_ssh_common_args"] = f"-o ProxyCommand={shlex.quote(proxy_cmd)}"
        hv["mmload_jump_host"] = jump  # the first address dialed (group_vars: loopback hosts)
    return hv


def load_targets(outputs: DeploymentOutputs) -> list[str]:
    """Where load goes: outputs.json's ``load_targets``, else (an outputs.json written before
    the field existed) each proxy's private address, else ``site_url``."""
    if outputs.load_targets:
        return outputs.load_targets
    proxies = [f"http://{h.private_ip}" for h in outputs.hosts.get("proxy", [])]
    return proxies or [outputs.site_url]


def deployment_vars(outputs: DeploymentOutputs, *, users: int) -> dict[str, Any]:
    """Variables every role reads: the deployment's endpoints (never a secret)."""
    db = outputs.database.model_dump(exclude={"master_secret_arn"}) if outputs.database else None
    return {
        "mmload_deployment": outputs.deployment,
        "mmload_users": users,
        "mmload_site_url": outputs.site_url,
        "mmload_load_targets": load_targets(outputs),
        "mmload_db": db,
        "mmload_search": outputs.search.model_dump() if outputs.search else None,
        "mmload_cache": outputs.cache.model_dump() if outputs.cache else None,
        "mmload_bucket": outputs.bucket.model_dump() if outputs.bucket else None,
        "mmload_target": outputs.target.model_dump() if outputs.target else None,
    }


def build_inventory(outputs: DeploymentOutputs, *, users: int, key: Path) -> dict[str, Any]:
    """The inventory (YAML/JSON inventory shape) for ``outputs``."""
    jump = jump_host(outputs)
    children: dict[str, Any] = {}
    for group in groups():
        hosts = outputs.hosts.get(group, [])
        children[group] = {
            "hosts": {
                h.name: host_vars(h, jump=jump, user=outputs.ssh_user, key=key) for h in hosts
            }
        }
    return {
        "all": {
            "vars": {
                "ansible_user": outputs.ssh_user,
                "ansible_ssh_private_key_file": str(key),
                **deployment_vars(outputs, users=users),
            },
            "children": children,
        }
    }


def local_inventory(
    deployment_vars_: dict[str, Any], *, become: bool = False, python: str = "/usr/bin/python3"
) -> dict[str, Any]:
    """One host, this machine (connection local), in every group: for a local converge."""
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": python,
        "ansible_become": become,
        "mmload_private_ip": "127.0.0.1",
    }
    return {
        "all": {
            "vars": deployment_vars_,
            "children": {g: {"hosts": {"localhost": host}} for g in groups()},
        }
    }
