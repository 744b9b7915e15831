"""Templates rendered by the real Ansible for shapes the local converge cannot have:
two app nodes (Mattermost clustering, two upstream servers) and no search/cache/bucket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmload.configure.driver import ANSIBLE_DIR

ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
pytestmark = pytest.mark.slow


def test_two_app_nodes_cluster_and_bare_deployment(tmp_path: Path) -> None:
    roles = ANSIBLE_DIR / "roles"
    local = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
    inventory = {
        "all": {
            "vars": {
                "mmload_root": str(tmp_path / "root"),
                "mmload_deployment": "mm-ha",
                "mmload_users": 30000,
                "mmload_site_url": "http://198.51.100.20",
                "mmload_db": {
                    "engine": "aurora-postgresql",
                    "writer_endpoint": "db-w",
                    "port": 5432,
                    "reader_endpoints": [],
                    "name": "mattermost",
                    "username": "mmuser",
                },
                "mmload_search": None,
                "mmload_cache": None,
                "mmload_bucket": None,
            },
            "children": {
                "app": {
                    "hosts": {
                        "app-0": {**local, "mmload_private_ip": "10.0.1.10"},
                        "app-1": {**local, "mmload_private_ip": "10.0.1.11"},
                    }
                },
                "proxy": {"hosts": {"proxy-0": {**local, "mmload_private_ip": "10.0.0.10"}}},
            },
        }
    }
    playbook = [
        {
            "name": "Render the Mattermost settings per app node",
            "hosts": "app",
            "gather_facts": False,
            "vars_files": [str(roles / "mattermost/defaults/main.yml")],
            "tasks": [
                {
                    "name": "Render",
                    "ansible.builtin.template": {
                        "src": str(roles / "mattermost/templates/settings.json.j2"),
                        "dest": str(tmp_path / "{{ inventory_hostname }}.json"),
                        "mode": "0600",
                    },
                    "no_log": True,
                }
            ],
        },
        {
            "name": "Render the proxy site",
            "hosts": "proxy",
            "gather_facts": False,
            "vars_files": [  # with the shared settings (the listen backlog)
                str(ANSIBLE_DIR / "group_vars/all.yml"),
                str(roles / "proxy/defaults/main.yml"),
            ],
            "tasks": [
                {
                    "name": "Render",
                    "ansible.builtin.template": {
                        "src": str(roles / "proxy/templates/mattermost.conf.j2"),
                        "dest": str(tmp_path / "mattermost.conf"),
                        "mode": "0644",
                    },
                }
            ],
        },
    ]
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(playbook, sort_keys=False))
    proc = subprocess.run(
        [
            ANSIBLE_PLAYBOOK,
            "-i",
            "hosts.yml",
            "play.yml",
            "-e",
            json.dumps(
                {
                    "mattermost_db_password": "pw",
                    "mattermost_version": "11.1.0",
                    # above group_vars/all.yml's "" (a vars_file of the proxy play)
                    "mmload_root": str(tmp_path / "root"),
                }
            ),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    for host, ip in (("app-0", "10.0.1.10"), ("app-1", "10.0.1.11")):
        cfg = json.loads((tmp_path / f"{host}.json").read_text())
        cluster = cfg["ClusterSettings"]
        assert cluster["Enable"] is True and cluster["ClusterName"] == "mm-ha"
        assert cluster["AdvertiseAddress"] == ip and cluster["UseIPAddress"] is True
        assert cfg["SqlSettings"]["DataSourceReplicas"] == []
        assert cfg["ElasticsearchSettings"]["EnableSearching"] is False
        assert cfg["CacheSettings"] == {"CacheType": "lru"}
        assert cfg["FileSettings"]["DriverName"] == "local"
    site = (tmp_path / "mattermost.conf").read_text()
    assert "server 10.0.1.10:8065 max_fails=0;" in site
    assert "server 10.0.1.11:8065 max_fails=0;" in site


@pytest.mark.parametrize("bucket", [None, {"name": "mm-files", "region": "us-east-1"}])
def test_seed_on_two_app_nodes_needs_the_shared_file_store(tmp_path: Path, bucket) -> None:
    """The seed tasks on a two-node cluster: without a files bucket (each node's local file
    store) the import is refused before anything is copied, since the node that claims the job
    could not read the upload; with the bucket the check passes (only that task is judged: the
    later ones need a Mattermost server, tests/configure/test_converge.py runs them)."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {
        "all": {
            "vars": {"mmload_bucket": bucket},
            "children": {"app": {"hosts": {"app-0": dict(local), "app-1": dict(local)}}},
        }
    }
    seed = tmp_path / "population.jsonl"
    seed.write_text('{"type":"version","version":1}\n')
    playbook = [
        {
            "name": "Seed",
            "hosts": "app",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "The mattermost role's seed tasks",
                    "ansible.builtin.include_role": {"name": "mattermost", "tasks_from": "seed"},
                }
            ],
        }
    ]
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(playbook, sort_keys=False))
    extra = {"mmload_root": str(tmp_path / "root"), "mattermost_seed_file": str(seed)}
    proc = subprocess.run(
        [
            ANSIBLE_PLAYBOOK,
            "-i",
            "hosts.yml",
            "play.yml",
            "-e",
            json.dumps(extra),
        ],
        cwd=tmp_path,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(ANSIBLE_DIR / "roles")},
        capture_output=True,
        text=True,
        timeout=180,
        input="",
    )
    out = proc.stdout
    check = out.split("TASK [mattermost : Check that every app node sees the uploaded seed]")[1]
    check = check.split("TASK [")[0]
    if bucket is None:
        assert proc.returncode != 0
        assert "needs the S3 file store" in check and "2 app nodes" in check, check
        assert "TASK [mattermost : Create the import folder]" not in out
    else:
        assert "failed" not in check.lower(), check
        assert "ok: [app-0]" in check
