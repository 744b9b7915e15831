"""Real OpenSSH servers on loopback addresses, standing in for a deployment's machines.

Each host is Debian's ``sshd -D -f CONFIG`` with its own host key, listening on its own
127.x.y.z address (all on one port), accepting one client key generated for the test. Together
they stand in for the jump host, the coordinator and the agents; ``outputs()`` writes an
outputs.json (docs/deployment-outputs.md) that names them. Every sshd runs in its own process
group and is stopped by that id, sessions included.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmload.net import free_port

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start as root without it


@dataclass
class SshHost:
    """One sshd: its name in outputs.json, its address and its process."""

    name: str
    address: str
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def drop_sessions(self) -> int:
        """SIGKILL the server side of every open session (a dropped network, as seen from the
        host); the listener keeps running. Returns how many were killed."""
        if self.proc is None:
            return 0
        killed = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:  # ppid: a session of this listener
                try:
                    os.kill(int(stat.parent.name), signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
        return killed

    def stop(self) -> None:
        """Stop the listener and every session it started (one process group)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


def _loopback_block() -> str:
    """A random 127.a.b prefix, so that parallel test sessions on one machine do not collide."""
    return f"127.{random.randint(20, 250)}.{random.randint(1, 250)}"


def _wait_listening(address: str, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60  # returns once it answers; a loaded CI machine is slow
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd on {address}:{port} exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection((address, port), timeout=5) as s:
                if s.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"sshd on {address}:{port} did not start: {log.read_text()[-2000:]}")


@dataclass
class SshHosts:
    """Several sshd's on one port, each on its own loopback address."""

    root: Path
    hosts: dict[str, SshHost] = field(default_factory=dict)
    user: str = field(default_factory=lambda: os.environ.get("USER") or _whoami())
    port: int = 0
    prefix: str = field(default_factory=_loopback_block)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.key = self.root / "id_ed25519"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mmload-test", "-f", self.key],
            check=True,
        )
        self.port = free_port(f"{self.prefix}.1")

    def start(self, *names: str) -> list[SshHost]:
        """Start one sshd per name (addresses .1, .2, ... in the order given)."""
        if not Path(SSHD).exists():
            raise RuntimeError(f"{SSHD} missing: `make sysdeps` installs openssh-server")
        if os.geteuid() == 0:
            PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        started = []
        for name in names:
            host = self._configure(name, f"{self.prefix}.{len(self.hosts) + 1}")
            self.hosts[name] = host
            host.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(host.config)],
                stdout=subprocess.DEVNULL,
                stderr=host.log.open("wb"),
                start_new_session=True,
            )
            _wait_listening(host.address, self.port, host.proc, host.log)
            started.append(host)
        return started

    def _configure(self, name: str, address: str) -> SshHost:
        folder = self.root / name
        folder.mkdir()
        host_key = folder / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key], check=True)
        config = folder / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"ListenAddress {address}:{self.port}",
                    f"HostKey {host_key}",
                    "PidFile none",
                    f"AuthorizedKeysFile {self.key}.pub",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    # the tests run as root in CI: key-only root login, nothing else
                    "PermitRootLogin prohibit-password",
                    "UsePAM no",
                    "StrictModes no",  # keys live in pytest's tmp folders
                    "AllowTcpForwarding yes",
                    "PermitTTY yes",
                    "MaxStartups 50",
                    "MaxSessions 50",
                    "Subsystem sftp internal-sftp",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        return SshHost(name, address, config, folder / "sshd.log")

    def stop(self) -> None:
        for host in self.hosts.values():
            host.stop()

    def outputs(
        self,
        workdir: Path,
        *,
        deployment: str,
        jump: str,
        roles: dict[str, list[str]],
        public: tuple[str, ...] = (),
        extra: dict[str, Any] | None = None,
    ) -> Path:
        """Write ``workdir/outputs.json`` naming the hosts: ``jump`` is ``ssh_jump_host``; hosts
        in ``public`` get a public address, every other one is reached through the jump host."""
        workdir.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.key, workdir / "id_ed25519")
        os.chmod(workdir / "id_ed25519", 0o600)
        hosts: dict[str, list[dict[str, Any]]] = {
            r: [] for r in ("app", "proxy", "metrics", "agents", "coordinator")
        }
        for role, names in roles.items():
            for name in names:
                addr = self.hosts[name].address
                pub = addr if name in public else None
                hosts[role].append({"name": name, "private_ip": addr, "public_ip": pub})
        data = {
            "deployment": deployment,
            "region": "us-east-1",
            "tier": "200",
            "ssh_user": self.user,
            "ssh_port": self.port,
            "ssh_private_key_path": str(workdir / "id_ed25519"),
            "ssh_jump_host": self.hosts[jump].address,
            "hosts": hosts,
            "database": {
                "engine": "postgres",
                "writer_endpoint": "127.0.0.1",
                "reader_endpoints": [],
                "port": 5432,
                "name": "mattermost",
                "username": "mmuser",
                "master_secret_arn": None,
            },
            "search": None,
            "cache": None,
            "bucket": None,
            "proxy_address": None,
            "site_url": "http://127.0.0.1",
            **(extra or {}),
        }
        path = workdir / "outputs.json"
        path.write_text(json.dumps(data, indent=2))
        return path

    def sessions(self, name: str) -> list[str]:
        """The log lines of accepted logins on host ``name`` (which hosts were really used)."""
        log = self.hosts[name].log
        lines = log.read_text(errors="replace").splitlines()
        return [ln for ln in lines if "Accepted publickey" in ln]


def _whoami() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name
