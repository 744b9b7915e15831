"""outputs.json → inventory: groups, connection variables, deployment facts, one-line errors.

Uses an outputs.json in exactly the shape of docs/deployment-outputs.md; the inventory then drives
the real playbook (ansible-playbook --list-hosts) without reaching any host.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmload.configure.driver import ANSIBLE_DIR
from mmload.configure.inventory import build_inventory, groups, load_outputs, resolve_key
from mmload.errors import UserError

ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))


def test_groups_and_hosts_follow_outputs(outputs_file: Path) -> None:
    outputs = load_outputs(outputs_file)
    inv = build_inventory(outputs, users=15000, key=Path("/keys/id_ed25519"))
    children = inv["all"]["children"]
    assert set(children) == set(groups())
    assert list(children["app"]["hosts"]) == ["mm-2k-app-0", "mm-2k-app-1"]
    assert list(children["coordinator"]["hosts"]) == ["mm-2k-coordinator-0"]
    # Public nodes are reached directly; every node knows its private address.
    proxy = children["proxy"]["hosts"]["mm-2k-proxy-0"]
    assert proxy["ansible_host"] == "203.0.113.5"
    assert proxy["mmload_private_ip"] == "10.0.0.10"
    assert "ansible_ssh_common_args" not in proxy


def test_private_nodes_go_through_the_coordinator(outputs_file: Path) -> None:
    inv = build_inventory(load_outputs(outputs_file), users=2000, key=Path("/keys/id_ed25519"))
    app = inv["all"]["children"]["app"]["hosts"]["mm-2k-app-0"]
    assert app["ansible_host"] == "10.0.1.10"
    args = app["ansible_ssh_common_args"]
    assert "ProxyCommand=" in args and "ubuntu@203.0.113.8" in args
    assert "-i /keys/id_ed25519" in args and "StrictHostKeyChecking=accept-new" in args


def test_explicit_jump_host_wins(outputs_file: Path, outputs_data: dict) -> None:
    outputs_data["ssh_jump_host"] = "198.51.100.99"
    outputs_file.write_text(json.dumps(outputs_data))
    inv = build_inventory(load_outputs(outputs_file), users=2000, key=Path("/k"))
    assert (
        "ubuntu@198.51.100.99"
        in (inv["all"]["children"]["app"]["hosts"]["mm-2k-app-1"]["ansible_ssh_common_args"])
    )


def test_database_endpoints_are_variables_and_no_secret(outputs_file: Path) -> None:
    inv = build_inventory(load_outputs(outputs_file), users=15000, key=Path("/k"))
    v = inv["all"]["vars"]
    assert v["mmload_db"]["writer_endpoint"] == "mm-2k-db.cluster-xyz.us-east-1.rds.amazonaws.com"
    assert v["mmload_db"]["reader_endpoints"] == ["mm-2k-db-1.xyz.us-east-1.rds.amazonaws.com"]
    assert v["mmload_db"]["port"] == 5432
    assert "master_secret_arn" not in v["mmload_db"]
    assert v["mmload_users"] == 15000
    assert v["mmload_site_url"] == "http://203.0.113.5"
    # an outputs.json without search.nodes (written before the field existed) means one node
    assert v["mmload_search"] == {
        "endpoint": "vpc-mm-2k-abc.us-east-1.es.amazonaws.com",
        "nodes": 1,
    }
    # without load_targets (an older outputs.json): each proxy's private address
    assert v["mmload_load_targets"] == ["http://10.0.0.10"]
    assert v["mmload_cache"]["port"] == 6379
    assert v["ansible_user"] == "ubuntu"
    assert "password" not in json.dumps(inv).lower()


def test_null_search_and_cache(outputs_file: Path, outputs_data: dict) -> None:
    outputs_data["search"] = None
    outputs_data["cache"] = None
    outputs_file.write_text(json.dumps(outputs_data))
    v = build_inventory(load_outputs(outputs_file), users=200, key=Path("/k"))["all"]["vars"]
    assert v["mmload_search"] is None and v["mmload_cache"] is None


def test_key_found_next_to_outputs(tmp_path: Path, outputs_file: Path) -> None:
    (tmp_path / "id_ed25519").write_text("key")
    assert resolve_key(load_outputs(outputs_file), outputs_file) == tmp_path / "id_ed25519"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["database"].pop("writer_endpoint"), "database.writer_endpoint"),
        (lambda d: d["hosts"]["app"][0].update(private_ip=7), "hosts.app[0].private_ip"),
        (lambda d: d["hosts"].update(jobs=[]), "hosts.jobs"),
    ],
)
def test_bad_outputs_name_file_and_field(outputs_file: Path, outputs_data: dict, mutate, field):
    mutate(outputs_data)
    outputs_file.write_text(json.dumps(outputs_data))
    with pytest.raises(UserError) as err:
        load_outputs(outputs_file)
    line = err.value.one_line()
    assert line.startswith(f"{outputs_file}: {field}")
    assert "\n" not in line


def test_outputs_not_json_or_missing(tmp_path: Path) -> None:
    bad = tmp_path / "outputs.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="invalid JSON"):
        load_outputs(bad)
    with pytest.raises(UserError, match="mmload infra apply"):
        load_outputs(tmp_path / "missing.json")


def test_inventory_drives_the_playbook(tmp_path: Path, outputs_file: Path) -> None:
    """The real ansible-playbook reads the inventory: each play targets its group's hosts."""
    inv = build_inventory(load_outputs(outputs_file), users=2000, key=Path("/k"))
    inv_file = tmp_path / "hosts.yml"
    inv_file.write_text(yaml.safe_dump(inv))
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inv_file), "--list-hosts", "site.yml"],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    plays = {}
    current = None
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("play #"):
            current = line.split("(")[1].split(")")[0]
            plays[current] = []
        elif current and line.startswith("mm-2k-"):
            plays[current].append(line)
    assert sorted(plays["app"]) == ["mm-2k-app-0", "mm-2k-app-1"]
    assert plays["proxy"] == ["mm-2k-proxy-0"]
    assert plays["metrics"] == ["mm-2k-metrics-0"]
    assert plays["agents"] == ["mm-2k-agent-0"]
    assert plays["coordinator"] == ["mm-2k-coordinator-0"]
    assert len(plays["all"]) == 6
