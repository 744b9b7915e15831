"""Agents and proxy at scale (issue 12 item 8), with the real Ansible and nginx: the first play
waits for each node's connection before it gathers facts (bounded, skipped on this machine's own
hosts), NIC ring buffers are raised to the driver's maximum on agents and proxy and a driver that
refuses is reported (a stand-in ethtool, so no real NIC of this machine is touched), nginx's
listen backlog matches somaxconn (checked on the listening socket), and every apt task retries.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmload.configure.driver import ANSIBLE_DIR
from mmload.configure.inventory import HostOut, host_vars
from mmload.configure.tls import generated_tls
from mmload.net import free_port
from tests.configure.test_tls import render_proxy, wait_port

ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
ROLES = ANSIBLE_DIR / "roles"
GROUP_VARS = yaml.safe_load((ANSIBLE_DIR / "group_vars/all.yml").read_text())
pytestmark = pytest.mark.slow
LOCAL = {
    "ansible_connection": "local",
    "ansible_python_interpreter": sys.executable,
    "ansible_become": False,
}

# `ethtool -g` of an ENA NIC (c7i: 16384 RX descriptors at most, 1024 by default).
RINGS = """Ring parameters for ens5:
Pre-set maximums:
RX:\t\t16384
RX Mini:\tn/a
RX Jumbo:\tn/a
TX:\t\t1024
Current hardware settings:
RX:\t\t{rx}
RX Mini:\tn/a
RX Jumbo:\tn/a
TX:\t\t1024
RX Buf Len:\tn/a
TX Push:\toff
"""


def _ethtool(folder: Path, name: str, show: str | None, set_ok: bool) -> Path:
    """A stand-in ethtool: ``-g`` prints ``show`` (None: the driver reports no rings), ``-G``
    succeeds or is refused as drivers refuse it; every call logged to ``<name>.log``."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{name}.log"
    (folder / f"{name}.out").write_text(show or "")
    script = folder / name
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        'case "$1" in\n'
        + (
            f'  -g) cat "{folder / name}.out" ;;\n'
            if show
            else '  -g) echo "netlink error: Operation not supported" >&2; exit 76 ;;\n'
        )
        + (
            "  -G) exit 0 ;;\n"
            if set_ok
            else '  -G) echo "netlink error: Operation not supported" >&2; exit 76 ;;\n'
        )
        + "esac\n"
    )
    script.chmod(0o755)
    return script


def _playbook(tmp: Path, inventory: dict, plays: list[dict], *args: str) -> dict[str, Any]:
    """ansible-playbook with the json callback: the parsed result."""
    (tmp / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp / "play.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    # the playbook's group_vars, below the inventory's host vars as in ansible/
    (tmp / "group_vars").symlink_to(ANSIBLE_DIR / "group_vars")
    env = {
        **os.environ,
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_ROLES_PATH": str(ROLES),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
    }
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "hosts.yml", "play.yml", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = json.loads(proc.stdout)
    out["rc"] = proc.returncode
    return out


def _results(run: dict[str, Any], task: str) -> dict[str, dict[str, Any]]:
    """host -> result of the task named ``task`` in the json callback's output."""
    for play in run["plays"]:
        for t in play["tasks"]:
            if t["task"]["name"] in (task, f"common : {task}"):  # a role's task: "role : name"
                return t["hosts"]
    raise AssertionError(f"no task {task!r} in the run")


def test_nic_rings_raised_to_the_maximum_and_a_refusing_driver_reported(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    hosts = {
        # below the maximum: raised
        "agent-ena": _ethtool(bin_dir, "ena", RINGS.format(rx=1024), set_ok=True),
        # the driver refuses the change: reported, not failed
        "proxy-refuses": _ethtool(bin_dir, "refuses", RINGS.format(rx=1024), set_ok=False),
        # the driver reports no rings (lo, veth): nothing set, reported
        "agent-norings": _ethtool(bin_dir, "norings", None, set_ok=True),
        # already at the maximum: nothing to do
        "proxy-atmax": _ethtool(bin_dir, "atmax", RINGS.format(rx=16384), set_ok=True),
        # an app node: not a load-carrying group, never read
        "app-0": _ethtool(bin_dir, "app", RINGS.format(rx=1024), set_ok=True),
    }
    tune = {"mmload_loopback_host": False, "common_nic": "ens5"}  # as on an EC2 instance
    inventory = {
        "all": {
            "vars": {"mmload_root": str(tmp_path / "root")},
            "children": {
                group: {
                    "hosts": {
                        h: {**LOCAL, **tune, "common_ethtool": str(hosts[h])}
                        for h in hosts
                        if h.startswith(prefix)
                    }
                }
                for group, prefix in (("agents", "agent"), ("proxy", "proxy"), ("app", "app"))
            },
        }
    }
    # this machine's own host, with the defaults: skipped (its real NIC is never touched)
    inventory["all"]["children"]["agents"]["hosts"]["localhost"] = dict(LOCAL)
    plays = [
        {
            "name": "NIC rings",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Common role's NIC tasks",
                    "ansible.builtin.include_role": {"name": "common", "tasks_from": "nic"},
                }
            ],
        }
    ]
    run = _playbook(tmp_path, inventory, plays, "-e", json.dumps({"mmload_root": str(tmp_path)}))
    assert run["rc"] == 0, json.dumps(run["stats"])
    calls = {h: (bin_dir / f"{p.name}.log") for h, p in hosts.items()}
    logged = {h: log.read_text().splitlines() if log.exists() else [] for h, log in calls.items()}
    assert logged == {
        "agent-ena": ["-g ens5", "-G ens5 rx 16384 tx 1024"],
        "proxy-refuses": ["-g ens5", "-G ens5 rx 16384 tx 1024"],
        "agent-norings": ["-g ens5"],
        "proxy-atmax": ["-g ens5"],
        "app-0": [],
    }
    raised = _results(run, "Raise the NIC's ring buffers to the driver's maximum")
    assert raised["agent-ena"]["changed"] is True
    assert raised["localhost"].get("skipped") is True
    report = _results(run, "Report a NIC whose ring buffers stay as they are")
    reported = {h for h, r in report.items() if not r.get("skipped")}
    assert reported == {"proxy-refuses", "agent-norings"}, report
    for host in reported:
        assert "Operation not supported" in report[host]["msg"], report[host]
    read = _results(run, "Read the NIC's ring sizes")
    assert read["localhost"].get("skipped") is True  # a host on this machine: not tuned
    assert run["stats"]["localhost"]["failures"] == 0


def test_first_play_waits_for_the_connection_before_facts(tmp_path: Path) -> None:
    """site.yml's first play waits for every host's connection (tagged always, so `--tags
    proxy` waits too) before the next one gathers facts; the wait is bounded by
    mmload_connect_timeout and skipped for hosts on this machine (connection local or
    127.0.0.0/8), which are never booting."""
    site = yaml.safe_load((ANSIBLE_DIR / "site.yml").read_text())
    first, common = site[0], site[1]
    assert first["hosts"] == "all" and first["gather_facts"] is False
    (wait,) = first["tasks"]
    assert wait["tags"] == ["always"]
    assert "mmload_connect_timeout" in wait["ansible.builtin.wait_for_connection"]["timeout"]
    assert common["hosts"] == "all" and common.get("gather_facts", True) is not False
    assert GROUP_VARS["mmload_connect_timeout"] >= 120  # a fresh instance boots its sshd

    closed = free_port()  # nothing listens: an instance whose sshd is not up yet
    inventory = {
        "all": {
            "vars": {"mmload_root": str(tmp_path / "root")},
            "children": {
                "agents": {
                    "hosts": {
                        # as a remote node that answers
                        "ready-0": {**LOCAL, "mmload_loopback_host": False},
                        # as a remote node that never answers: fails after the timeout
                        "booting-0": {
                            "ansible_host": "127.0.0.1",
                            "ansible_port": closed,
                            "ansible_connection": "ssh",
                            "ansible_user": "nobody",
                            "ansible_become": False,
                            "mmload_loopback_host": False,
                            "mmload_connect_timeout": 6,
                        },
                        # this machine: no wait, facts at once
                        "localhost": dict(LOCAL),
                    }
                },
                # the inventory classifies a 127.0.0.x ssh host as this machine's too
                "proxy": {
                    "hosts": {"loop-0": {"ansible_host": "127.0.0.7", "ansible_connection": "ssh"}}
                },
            },
        }
    }
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_HOST_KEY_CHECKING": "False"}
    started = time.monotonic()
    proc = subprocess.run(
        # only the `always` task of site.yml (the wait), and each play's facts
        [ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "hosts.yml"), "site.yml", "--tags", "mmload-no"],
        cwd=ANSIBLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        input="",
    )
    elapsed = time.monotonic() - started
    run = json.loads(proc.stdout)
    waited = _results(run, "Wait until the node answers over its connection")
    assert not waited["ready-0"].get("failed") and not waited["ready-0"].get("skipped")
    assert waited["booting-0"].get("failed") is True
    assert "timed out" in waited["booting-0"]["msg"].lower(), waited["booting-0"]
    assert waited["localhost"].get("skipped") is True
    facts = _results(run, "Gathering Facts")
    assert "booting-0" not in facts  # it never got this far
    assert facts["ready-0"]["ansible_facts"]["ansible_system"] == "Linux"
    assert waited["loop-0"].get("skipped") is True
    assert elapsed < 240, elapsed  # bounded by the timeout, not Ansible's default 600 s


def test_hosts_on_this_machine_are_told_apart(tmp_path: Path) -> None:
    """mmload_loopback_host, as the real Ansible evaluates it for hosts the inventory builder
    makes: the first address dialed (a private node's jump host) decides; nothing connects."""
    key = tmp_path / "id_ed25519"

    def built(private: str, public: str | None, jump: str | None) -> dict[str, Any]:
        return host_vars(
            HostOut(name="x", private_ip=private, public_ip=public),
            jump=jump,
            user="ubuntu",
            key=key,
        )

    hosts = {
        "public-node": built("10.0.0.5", "198.51.100.5", "198.51.100.9"),
        "private-node": built("10.0.1.5", None, "198.51.100.9"),
        "test-public": built("10.0.0.6", "127.0.0.1", "127.0.0.1"),
        "test-private": built("10.0.1.6", None, "127.0.0.1"),
        "local": dict(LOCAL),
    }
    plays = [
        {
            "name": "Classify",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [{"name": "Show", "ansible.builtin.debug": {"var": "mmload_loopback_host"}}],
        }
    ]
    run = _playbook(tmp_path, {"all": {"hosts": hosts}}, plays)
    shown = {h: r["mmload_loopback_host"] for h, r in _results(run, "Show").items()}
    assert {h: str(v) for h, v in shown.items()} == {
        "public-node": "False",
        "private-node": "False",
        "test-public": "True",
        "test-private": "True",
        "local": "True",
    }


def test_every_apt_task_waits_for_the_lock_and_retries() -> None:
    """apt on a fresh instance: cloud-init's first apt run holds the dpkg lock, a mirror fails
    once. Every apt task of every role has lock_timeout, register, retries and until."""
    found = 0
    for tasks_file in sorted(ROLES.glob("*/tasks/*.yml")):
        for task in yaml.safe_load(tasks_file.read_text()) or []:
            apt = task.get("ansible.builtin.apt")
            if apt is None:
                continue
            found += 1
            where = f"{tasks_file.relative_to(ANSIBLE_DIR)}: {task['name']}"
            assert "mmload_apt_lock_timeout" in str(apt.get("lock_timeout")), where
            assert task.get("until") == f"{task['register']} is succeeded", where
            assert "mmload_apt_retries" in str(task.get("retries")), where
            assert int(task.get("delay", 0)) >= 5, where
    assert found >= 4
    assert GROUP_VARS["mmload_apt_retries"] >= 3 and GROUP_VARS["mmload_apt_lock_timeout"] >= 120


def _listen_backlogs(port: int) -> list[int]:
    """The accept-queue length of each socket listening on ``port`` (ss: Send-Q of LISTEN)."""
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return [int(line.split()[2]) for line in out.splitlines() if line.startswith("LISTEN")]


def test_nginx_listen_backlog_matches_somaxconn(tmp_path: Path) -> None:
    """nginx's backlog defaults to 511 on Linux whatever somaxconn says; the proxy asks for
    mmload_somaxconn, the value the common role writes into net.core.somaxconn. The real nginx
    (config checked with nginx -t) listens with it: the kernel caps the queue at this machine's
    somaxconn, so the socket shows min(requested, somaxconn)."""
    common = yaml.safe_load((ROLES / "common/defaults/main.yml").read_text())
    assert common["common_sysctls"]["net.core.somaxconn"] == "{{ mmload_somaxconn }}"
    want = int(GROUP_VARS["mmload_somaxconn"])
    assert want == 65535
    tls = generated_tls(tmp_path / "operator", "mm-backlog", ["127.0.0.1"])
    http_port, https_port = free_port(), free_port()
    root = tmp_path / "root"
    conf = render_proxy(root, free_port(), http_port, https_port)
    (root / "etc/nginx/tls/mattermost.pem").write_text(tls.cert_pem)
    key = root / "etc/nginx/tls/mattermost.key"
    key.write_text(tls.key_pem)
    key.chmod(0o600)
    site = (conf.parent / "mattermost.conf").read_text()
    listens = re.findall(r"^\s*listen\s+([^;]+);", site, re.M)
    assert len(listens) == 2 and all(f"backlog={want}" in line for line in listens), listens
    check = subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-p", f"{conf.parent}/"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    nginx = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", f"{conf.parent}/", "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_port(https_port, nginx)
        for port in (http_port, https_port):
            backlogs = _listen_backlogs(port)
            assert backlogs and set(backlogs) == {min(want, somaxconn)}, (port, backlogs)
    finally:
        nginx.terminate()
        nginx.wait(timeout=20)
    if somaxconn > 511:  # nginx's own default would show here as 511
        assert min(want, somaxconn) > 511
