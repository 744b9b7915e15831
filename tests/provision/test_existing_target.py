"""An existing server as the target (deployment.yaml ``target:``): only the agents, the
coordinator and the metrics node are built, and load goes to the customer's URL.

Real seams: render + `terraform validate` of the templates; `mmload up --only provision` (plan,
`infra check`, apply) and `mmload down` with the real terraform CLI and hashicorp/aws provider
against moto on 127.0.0.1; the outputs.json it writes read by configuration's own reader into
an inventory, and by the remote load's plan into the master's `--target`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mmload.config.deployment import Deployment, LoadSettings
from mmload.configure.inventory import build_inventory, load_outputs
from mmload.lifecycle.remote_load import master_argv, plan_load, worker_argv
from mmload.provision.check import check_plan
from mmload.provision.render import TEMPLATE_DIR, render
from tests.provision import moto_eni
from tests.provision.conftest import (
    MOTO_UBUNTU_AMI,
    OPERATOR,
    PLUGIN_DIR,
    MotoServer,
    cli,
    require_tools,
    tf_env,
    write_deployment,
)
from tests.provision.test_check import _without
from tests.provision.test_lifecycle_moto import leftovers

pytestmark = pytest.mark.slow

URL = "https://chat.example.com"
PROMETHEUS = "http://10.1.2.4:9090"
METRICS = "http://10.1.2.3:8067/metrics"
TARGET = {"url": URL, "prometheus_url": PROMETHEUS, "metrics_url": METRICS}
NAME = "mm-ext"
# The flows an agents-only deployment needs, and only those (no Mattermost flow).
EXPECTED = {
    "operators → coordinator tcp/22 (SSH jump host)",
    "operators → agents tcp/22 (SSH, configure)",
    "operators → metrics tcp/22 (SSH, configure)",
    "agents → coordinator tcp/5557 (Locust master port)",
    "coordinator → metrics tcp/9090 (Prometheus for server-side SLOs)",
    "metrics → agents tcp/9100 (node_exporter)",
    "metrics → coordinator tcp/9100 (node_exporter)",
    "agents → chat.example.com tcp/443 (load to the existing server)",
    "coordinator → chat.example.com tcp/443 (its probe)",
    "metrics → 10.1.2.4 tcp/9090 (the existing server's metrics)",
    "metrics → 10.1.2.3 tcp/8067 (the existing server's metrics)",
    "nothing else open to the world",
}


def deployment(**target: object) -> Deployment:
    return Deployment.model_validate(
        {
            "name": NAME,
            "tier": 2000,
            "operator_cidrs": [OPERATOR],
            "ami_id": MOTO_UBUNTU_AMI,
            "target": {**TARGET, **target},
        }
    )


def test_render_has_no_mattermost_stack_and_validates(tmp_path: Path) -> None:
    require_tools()
    rendered = render(deployment(), tmp_path / "w")
    assert rendered.sizing.present() == {"agents", "coordinator", "metrics"}
    text = "".join(p.read_text() for p in rendered.files)
    for absent in (
        'resource "aws_instance" "app"',
        'resource "aws_instance" "proxy"',
        "aws_rds_cluster",
        "aws_db_instance",
        "aws_s3_bucket",
        'resource "aws_iam_role" "app"',
        "aws_opensearch_domain",
        "aws_elasticache",
        'resource "aws_security_group" "proxy"',
    ):
        assert absent not in text, absent
    outputs = (tmp_path / "w" / "outputs.tf").read_text()
    assert f'load_targets  = ["{URL}"]' in outputs and "database      = null" in outputs
    env = tf_env(tmp_path)
    for argv in (
        ["terraform", "init", "-backend=false", "-input=false", f"-plugin-dir={PLUGIN_DIR}"],
        ["terraform", "validate", "-no-color"],
        ["terraform", "fmt", "-check", "-diff"],
    ):
        proc = subprocess.run(argv, cwd=tmp_path / "w", env=env, capture_output=True, text=True)
        assert proc.returncode == 0, [*argv, proc.stdout[-3000:], proc.stderr[-3000:]]


def test_several_private_ips_give_each_agent_its_interface(tmp_path: Path) -> None:
    """load.agent_private_ips: an interface per agent with that many addresses and an Elastic
    IP (an interface made before its instance gets no automatic public address); one address:
    the agents are as before."""
    dep = deployment().model_copy(update={"load": LoadSettings(agent_private_ips=4)})
    text = (render(dep, tmp_path / "a").workdir / "agents.tf").read_text()
    assert "private_ips_count = 3" in text and 'resource "aws_eip" "agents"' in text
    assert "network_interface_id = aws_network_interface.agents[count.index].id" in text
    assert "associate_public_ip_address" not in text
    one = (render(deployment(), tmp_path / "b").workdir / "agents.tf").read_text()
    assert "aws_network_interface" not in one and "associate_public_ip_address = true" in one


def test_target_ports_become_egress_rules_only(tmp_path: Path) -> None:
    """A target on another port gets the agents' egress to it (no ingress anywhere); HTTPS to
    anywhere is already there (a duplicate rule would be refused by AWS); target.cidrs narrow
    the new rules."""
    text = (render(deployment(), tmp_path / "a").workdir / "security_groups.tf").read_text()
    assert "agents_target_443" not in text  # agents_egress_https already admits it
    assert '"metrics_target_metrics_9090"' in text and '"metrics_target_metrics_8067"' in text
    other = deployment(url="http://10.1.2.5:8065", cidrs=["10.1.2.0/24"])
    text = (render(other, tmp_path / "b").workdir / "security_groups.tf").read_text()
    block = text.split('"agents_target_8065" {')[1].split("}")[0]
    assert '"egress"' in block and '["10.1.2.0/24"]' in block and "8065" in block
    assert "0.0.0.0/0" not in block


def test_bad_target_is_one_line(tmp_path: Path) -> None:
    write_deployment(tmp_path / "deployment.yaml", name=NAME, tier=2000, target={"url": "ftp://x"})
    proc = cli("infra", "render", "-c", "deployment.yaml", cwd=tmp_path, env=tf_env(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "deployment.yaml" in line and "target.url" in line and "Traceback" not in line


def test_up_check_outputs_and_down_against_moto(tmp_path: Path) -> None:
    """`up --only provision` plans (the check passes with exactly the agents-only flows),
    applies and writes outputs.json; configuration reads it into an inventory whose load
    target is the customer's URL; the remote load sends the master there; `down` leaves
    nothing tagged."""
    require_tools()
    # moto with AWS's detaching of an instance's own interfaces at termination (moto_eni.py)
    server = MotoServer(tmp_path / "moto.log", command=moto_eni.command())
    try:
        write_deployment(
            tmp_path / "deployment.yaml",
            name=NAME,
            tier=2000,
            ami_id=MOTO_UBUNTU_AMI,
            owner="ci",
            components={"detailed_monitoring": False},
            aws={"endpoint_url": server.url},
            target=TARGET,
            load={"agent_private_ips": 3},
        )
        env = tf_env(tmp_path)
        workdir = tmp_path / ".deployments" / NAME
        plan_run = cli("infra", "plan", "-c", "deployment.yaml", cwd=tmp_path, env=env)
        assert plan_run.returncode == 0, plan_run.stdout[-3000:] + plan_run.stderr[-3000:]
        assert f"infra check: all {len(EXPECTED)} network checks pass" in plan_run.stdout
        show = subprocess.run(
            ["terraform", "show", "-json", "tfplan"],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        verdicts = check_plan(json.loads(show.stdout), [OPERATOR], TEMPLATE_DIR)
        assert [v.line() for v in verdicts if not v.ok] == []
        assert {v.label for v in verdicts} == EXPECTED
        plan = json.loads(show.stdout)
        failed = [
            v.line()
            for v in check_plan(
                _without(plan, "metrics_target_metrics_9090"), [OPERATOR], TEMPLATE_DIR
            )
            if not v.ok
        ]
        assert failed == [
            "FAIL metrics → 10.1.2.4 tcp/9090 (the existing server's metrics): no egress rule "
            "of aws_security_group.metrics admits it"
        ]
        up = cli(
            "up", "-c", "deployment.yaml", "--only", "provision", "--yes", cwd=tmp_path, env=env
        )
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        ec2 = server.client("ec2")
        tagged = [{"Name": "tag:mmload:deployment", "Values": [NAME]}]
        outputs_path = workdir / "outputs.json"
        raw = json.loads(outputs_path.read_text())
        assert set(raw["hosts"]) == {"agents", "coordinator", "metrics"}
        assert raw["load_targets"] == [URL] and raw["site_url"] == URL
        assert raw["target"] == TARGET and raw["database"] is None and raw["bucket"] is None
        outputs = load_outputs(outputs_path, deployment=NAME)
        inventory = build_inventory(outputs, users=100, key=workdir / "id_ed25519")
        variables = inventory["all"]["vars"]
        assert variables["mmload_load_targets"] == [URL] and variables["mmload_db"] is None
        assert variables["mmload_target"] == TARGET
        children = inventory["all"]["children"]
        assert not children["app"]["hosts"] and not children["proxy"]["hosts"]
        assert len(children["agents"]["hosts"]) == 1
        plan = plan_load(outputs, remote_mmload="mmload")
        assert plan.target == URL
        # the agent's three private addresses (its own interface), primary first, and its
        # Elastic IP: its workers send from each (`mmload worker --source-address`)
        (agent,) = raw["hosts"]["agents"]
        ips = agent["private_ips"]
        assert len(set(ips)) == 3 and ips[0] == agent["private_ip"] and agent["public_ip"]
        eni = ec2.describe_network_interfaces(Filters=tagged)["NetworkInterfaces"]
        (interface,) = [n for n in eni if n["PrivateIpAddress"] == agent["private_ip"]]
        assert {a["PrivateIpAddress"] for a in interface["PrivateIpAddresses"]} == set(ips)
        assert interface["Association"]["PublicIp"] == agent["public_ip"]
        hostvars = children["agents"]["hosts"][agent["name"]]
        assert hostvars["mmload_private_ips"] == ips
        assert plan.sources == {agent["name"]: tuple(ips)}
        argv = worker_argv(plan, "/p.json", agent["name"])
        assert [argv[i + 1] for i, a in enumerate(argv) if a == "--source-address"] == ips
        argv = master_argv(plan, "sev0-login-storm", {}, 2, "runs")
        assert argv[argv.index("--target") + 1] == URL
        assert plan.prometheus == f"http://{raw['hosts']['metrics'][0]['private_ip']}:9090"
        roles = sorted(
            next(t["Value"] for t in i["Tags"] if t["Key"] == "mmload:role")
            for r in ec2.describe_instances(Filters=tagged)["Reservations"]
            for i in r["Instances"]
        )
        assert roles == ["agents", "coordinator", "metrics"]
        down = cli("down", "-c", "deployment.yaml", "--yes", cwd=tmp_path, env=env)
        assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
        assert leftovers(server, NAME) == []
    finally:
        server.stop()
