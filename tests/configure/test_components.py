"""The component registry drives configuration: the playbook's plays and roles, the inventory
groups, the tags `mmload configure` accepts and its --help, and which roles need mmload itself.

A component added to a copy of the registry shows up in each of them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from mmload.config.components import COMMON_TAG, REGISTRY_ENV, REGISTRY_FILE, registry
from mmload.configure.driver import ANSIBLE_DIR
from mmload.configure.inventory import build_inventory, groups, load_outputs
from mmload.configure.plan import check_tags, installs_mmload, role_tags, selected_roles
from mmload.errors import UserError
from tests.conftest import run_cli


def plays() -> list[dict]:
    return yaml.safe_load((ANSIBLE_DIR / "site.yml").read_text())


def test_every_host_component_has_a_role_and_a_play_and_back() -> None:
    """site.yml waits for every host (a play without roles), runs common on all hosts, then one
    play per component with hosts: its group, its role, tagged with the role's name."""
    reg = registry()
    wait, *role_plays = plays()
    assert wait["hosts"] == "all" and "roles" not in wait
    by_hosts = {p["hosts"]: p["roles"] for p in role_plays}
    assert by_hosts.pop("all") == [{"role": COMMON_TAG, "tags": [COMMON_TAG]}]
    assert set(by_hosts) == set(reg.groups)
    for comp in reg.host_components:
        assert by_hosts[comp.group] == [{"role": comp.tag, "tags": [comp.tag]}], comp.name
        assert (ANSIBLE_DIR / "roles" / str(comp.tag) / "tasks" / "main.yml").is_file()
    roles = {p.name for p in (ANSIBLE_DIR / "roles").iterdir() if p.is_dir()}
    assert roles == {COMMON_TAG, *(c.tag for c in reg.host_components)}


def test_tags_follow_the_registry() -> None:
    reg = registry()
    tags = role_tags()
    assert tags[0] == COMMON_TAG and tags[-1] == "seed"
    assert tags[1:-1] == tuple(c.tag for c in reg.host_components)
    assert selected_roles([], []) == set(tags) - {"seed"}
    assert installs_mmload({"agents"}) and installs_mmload({"coordinator"})
    assert not installs_mmload({"mattermost", "proxy", "metrics", "common"})


def test_configure_help_lists_the_registry_tags() -> None:
    proc = run_cli("configure", "--help")
    assert proc.returncode == 0, proc.stderr
    assert f"only these roles ({', '.join(role_tags())})" in " ".join(proc.stdout.split())


# -- a component added to the registry ---------------------------------------------------------


@pytest.fixture
def extra_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = yaml.safe_load(REGISTRY_FILE.read_text())
    data["components"].append(
        {
            "name": "extra",
            "template": "extra",
            "security_group": "extra",
            "hosts": True,
            "group": "extras",
            "tag": "extra",
            "sizing": "coordinator",
            "runs_mmload": True,
        }
    )
    path = tmp_path / "components.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv(REGISTRY_ENV, str(path))
    return path


def test_an_added_component_is_an_inventory_group(
    extra_registry: Path, outputs_file: Path, outputs_data: dict
) -> None:
    assert groups()[-1] == "extras"
    outputs_data["hosts"]["extras"] = [
        {"name": "mm-2k-extra-0", "private_ip": "10.0.0.20", "public_ip": None}
    ]
    outputs_file.write_text(json.dumps(outputs_data))
    inv = build_inventory(load_outputs(outputs_file), users=2000, key=Path("/k"))
    extra = inv["all"]["children"]["extras"]["hosts"]["mm-2k-extra-0"]
    assert "ubuntu@203.0.113.8" in extra["ansible_ssh_common_args"]  # through the jump host
    outputs_data["hosts"]["unheard_of"] = []
    outputs_file.write_text(json.dumps(outputs_data))
    with pytest.raises(UserError, match="unknown host group 'unheard_of'"):
        load_outputs(outputs_file)


def test_an_added_component_is_a_tag(extra_registry: Path) -> None:
    check_tags(["extra"], [])
    assert "extra" in selected_roles([], [])
    assert installs_mmload({"extra"})
    with pytest.raises(UserError, match="unknown tag 'extras'"):
        check_tags(["extras"], [])


def test_an_added_component_is_in_the_help(extra_registry: Path) -> None:
    proc = run_cli("configure", "--help", env={**os.environ, REGISTRY_ENV: str(extra_registry)})
    assert proc.returncode == 0, proc.stderr
    assert "coordinator, extra, seed)" in " ".join(proc.stdout.split())
