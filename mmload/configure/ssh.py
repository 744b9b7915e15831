"""One OpenSSH client configuration per deployment, written beside its outputs.json.

``<working dir>/ssh_config`` names every host of outputs.json: hosts with a public address are
reached directly, the others through the jump host with ``ProxyJump`` (OpenSSH runs the jump
hop itself and passes ``-F`` on to it, so no helper process outlives a connection). Every entry
uses the deployment's key, ``IdentitiesOnly``, and the deployment's own ``known_hosts`` file
(keys accepted on first use, a changed key refused). Ansible, ``mmload ssh``, ``mmload db`` and
the remote load all connect with ``ssh -F <working dir>/ssh_config NAME``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mmload.configure.inventory import DeploymentOutputs, jump_host, resolve_key
from mmload.errors import UserError

CONFIG_FILE = "ssh_config"
KNOWN_HOSTS_FILE = "known_hosts"
JUMP_ALIAS = "mmload-jump"


@dataclass(frozen=True)
class SshAccess:
    """Where a deployment's SSH configuration is and which host names it knows."""

    config: Path
    known_hosts: Path
    hosts: dict[str, str]  # name -> address
    behind_jump: frozenset[str]
    user: str

    def argv(self, host: str, *extra: str) -> list[str]:
        """``ssh -F <config> [extra...] host`` (a command, if any, goes after)."""
        return ["ssh", "-F", str(self.config), *extra, host]

    def rsync_shell(self) -> str:
        """The ``rsync -e`` value that connects the same way."""
        return f"ssh -F {quote(str(self.config))}"


def quote(value: str) -> str:
    """A value for ssh_config: double-quoted when it holds a space."""
    if '"' in value or "\n" in value:
        raise UserError(f"unusable path for ssh_config: {value!r}")
    return f'"{value}"' if any(c.isspace() for c in value) else value


def render_config(outputs: DeploymentOutputs, *, key: Path, known_hosts: Path) -> str:
    """The ssh_config text for ``outputs`` (pure: no file is touched)."""
    jump = jump_host(outputs)
    lines = [
        f"# Written by mmload for deployment {outputs.deployment} from outputs.json; rewritten",
        "# on every use. Connect with: ssh -F <this file> HOST",
        "",
    ]
    if jump:
        lines += [f"Host {JUMP_ALIAS}", f"  HostName {jump}", f"  HostKeyAlias {JUMP_ALIAS}", ""]
    for _group, hosts in outputs.hosts.items():
        for host in hosts:
            lines += [f"Host {host.name}", f"  HostName {host.public_ip or host.private_ip}"]
            lines.append(f"  HostKeyAlias {host.name}")
            if not host.public_ip and jump:
                lines.append(f"  ProxyJump {JUMP_ALIAS}")
            lines.append("")
    lines += [
        "Host *",
        f"  User {outputs.ssh_user}",
        f"  Port {outputs.ssh_port}",
        f"  IdentityFile {quote(str(key))}",
        "  IdentitiesOnly yes",
        f"  UserKnownHostsFile {quote(str(known_hosts))}",
        "  StrictHostKeyChecking accept-new",
        "  BatchMode yes",
        "  LogLevel ERROR",
        "  ConnectTimeout 20",
        "  ServerAliveInterval 15",
        "  ServerAliveCountMax 4",
        "",
    ]
    return "\n".join(lines)


def write_ssh_config(outputs: DeploymentOutputs, outputs_path: Path) -> SshAccess:
    """Write ``ssh_config`` beside outputs.json (0600) and return how to use it."""
    folder = outputs_path.resolve().parent
    key = resolve_key(outputs, outputs_path)
    if not key.is_file():
        raise UserError(
            f"SSH private key not found: {key}",
            source=str(outputs_path),
            field="ssh_private_key_path",
        )
    known_hosts = folder / KNOWN_HOSTS_FILE
    config = folder / CONFIG_FILE
    text = render_config(outputs, key=key, known_hosts=known_hosts)
    tmp = config.with_name(CONFIG_FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    tmp.replace(config)
    jump = jump_host(outputs)
    hosts = {h.name: h.public_ip or h.private_ip for hs in outputs.hosts.values() for h in hs}
    behind = frozenset(
        h.name for hs in outputs.hosts.values() for h in hs if not h.public_ip and jump
    )
    return SshAccess(config, known_hosts, hosts, behind, outputs.ssh_user)
