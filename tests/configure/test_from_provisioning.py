"""The inventory built from the emulator-applied outputs drives the playbook.

`mmload infra plan` + `apply` run for real (terraform + hashicorp/aws provider) against moto,
the AWS emulator, with the provisioning tests' own fixtures (see BackgroundApply in conftest).
Then, from the outputs.json that apply wrote: the inventory is built, the real ansible-playbook
lists each play's hosts from it, and the database password is read from the RDS-managed secret
in the emulated Secrets Manager. The hosts themselves do not exist (moto runs no machines), so
no task is executed on them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmload.config.loader import load_model
from mmload.configure.driver import ANSIBLE_DIR
from mmload.configure.inventory import build_inventory, groups, load_outputs, resolve_key
from mmload.configure.plan import users_for
from mmload.configure.secrets import PASSWORD_ENV, read_db_password

pytestmark = pytest.mark.slow
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))


def list_hosts(inventory: dict, tmp: Path) -> dict[str, list[str]]:
    """Each play's hosts, as the real ansible-playbook resolves them from ``inventory``."""
    inv_file = tmp / "hosts.yml"
    inv_file.write_text(yaml.safe_dump(inventory))
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inv_file), "--list-hosts", "site.yml"],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    plays: dict[str, list[str]] = {}
    current = ""
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("play #"):
            current = line.split("(")[1].split(")")[0]
            plays[current] = []
        elif current and line and not line.startswith(("pattern:", "hosts (")):
            plays[current].append(line)
    return plays


def test_emulator_applied_outputs_drive_the_playbook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator_apply: Any
) -> None:
    out_path = emulator_apply.outputs_path()
    raw = json.loads(out_path.read_text())
    outputs = load_outputs(out_path)
    from mmload.config.deployment import Deployment

    dep = load_model(Deployment, emulator_apply.tmp / "deployment.yaml")
    key = resolve_key(outputs, out_path)
    assert key.is_file()  # the key provisioning generated
    inventory = build_inventory(outputs, users=users_for(dep), key=key)

    plays = list_hosts(inventory, tmp_path)
    for group in groups():
        assert sorted(plays[group]) == sorted(h["name"] for h in raw["hosts"][group])
    assert len(plays["all"]) == sum(len(v) for v in raw["hosts"].values())
    app = inventory["all"]["children"]["app"]["hosts"]
    jump = raw.get("ssh_jump_host") or raw["hosts"]["coordinator"][0]["public_ip"]
    for node in raw["hosts"]["app"]:
        hv = app[node["name"]]
        assert hv["ansible_host"] == node["private_ip"]
        assert f"@{jump}" in hv["ansible_ssh_common_args"]
    v = inventory["all"]["vars"]
    assert v["mmload_db"]["writer_endpoint"] == raw["database"]["writer_endpoint"]
    assert v["mmload_db"]["reader_endpoints"] == raw["database"]["reader_endpoints"]
    assert v["mmload_site_url"] == raw["site_url"] and v["mmload_users"] == 2000
    # Load goes to every proxy's private address (a rule naming the agents' group matches
    # private sources only), never to the public one the operator's browser uses.
    private = [f"https://{p['private_ip']}" for p in raw["hosts"]["proxy"]]
    assert raw["load_targets"] == private and v["mmload_load_targets"] == private
    assert all(p["public_ip"] not in raw["load_targets"][0] for p in raw["hosts"]["proxy"])

    # The password comes from the RDS-managed secret, through the deployment's endpoint.
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(k, "testing")
    password = read_db_password(
        outputs.database.master_secret_arn,
        region=outputs.region,
        endpoint_url=dep.aws.endpoint_url,
    )
    secret = emulator_apply.moto.client("secretsmanager").get_secret_value(
        SecretId=outputs.database.master_secret_arn
    )
    assert password == json.loads(secret["SecretString"])["password"]
    assert password not in out_path.read_text()
    emulator_apply.close()  # stop moto now rather than at the end of the whole session
