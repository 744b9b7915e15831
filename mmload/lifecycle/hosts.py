"""A deployment's machines as the lifecycle reaches them: outputs.json, ssh_config, host names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mmload.config.deployment import Deployment, load_deployment
from mmload.configure.inventory import DeploymentOutputs, load_outputs
from mmload.configure.ssh import SshAccess, write_ssh_config
from mmload.errors import UserError
from mmload.provision.terraform import OUTPUTS_FILE


@dataclass(frozen=True)
class Reached:
    """deployment.yaml, its outputs.json and the SSH configuration written beside it."""

    dep: Deployment
    workdir: Path
    outputs_path: Path
    outputs: DeploymentOutputs
    access: SshAccess


def reach(config: str | Path, outputs_path: Path | None = None) -> Reached:
    """Load deployment.yaml and its outputs.json; write the deployment's ssh_config."""
    dep = load_deployment(config)
    workdir = dep.workdir
    path = outputs_path or workdir / OUTPUTS_FILE
    outputs = load_outputs(path, deployment=dep.name)
    return Reached(dep, workdir, path, outputs, write_ssh_config(outputs, path))


def resolve_host(outputs: DeploymentOutputs, name: str) -> str:
    """A host by its name (``mm-2k-app-0``), its role (``coordinator``: the first one) or
    ``ROLE-N`` (``app-1``, ``agents-0``); a UserError lists the names otherwise."""
    names = [h.name for hosts in outputs.hosts.values() for h in hosts]
    if name in names:
        return name
    role, index = name, 0
    if m := re.fullmatch(r"(.+)-(\d+)", name):
        role, index = m.group(1), int(m.group(2))
    for alias in (role, role + "s", role.removesuffix("s")):
        hosts = outputs.hosts.get(alias) or []
        if hosts and index < len(hosts):
            return hosts[index].name
    known = ", ".join(names) or "none"
    raise UserError(f"no host {name!r} in this deployment; hosts: {known}", field="NAME")
