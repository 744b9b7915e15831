"""deployment.yaml validation, `mmload init`, `mmload architectures` and the catalog."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

from mmload.config.catalog import load_catalog, load_prices
from mmload.config.deployment import Deployment
from mmload.config.loader import load_model
from mmload.provision.sizing import agent_count, cost_lines, hourly_total, resolve, unpriced
from tests.conftest import run_cli
from tests.provision.conftest import OPERATOR

PUBLISHED = [200, 2000, 15000, 30000, 50000, 80000, 90000, 100000, 200000]


def test_catalog_has_every_published_tier_with_its_source() -> None:
    cat = load_catalog()
    assert cat.tier_names == PUBLISHED
    for tier in cat.tiers:
        assert tier.source.startswith("https://docs.mattermost.com/")
        assert f"scale-to-{tier.users}-users" in tier.source
        assert tier.app.instance_type.startswith("c7i.")
        assert tier.database.instance_class.startswith("db.r7g.")
    t15 = cat.tier(15000)
    assert t15 and (t15.app.count, t15.app.instance_type) == (2, "c7i.xlarge")
    t200k = cat.tier(200000)
    assert t200k and t200k.cache.count == 1 and t200k.proxy.count == 4


def test_every_catalog_type_is_priced() -> None:
    prices = load_prices()
    assert prices.region == "us-east-1" and prices.as_of
    for tier in load_catalog().tiers:
        for engine in ("aurora-postgresql", "postgres"):
            dep = Deployment.model_validate(
                {
                    "name": "mm-x",
                    "tier": tier.users,
                    "operator_cidrs": [OPERATOR],
                    "database": {"engine": engine},
                }
            )
            lines = cost_lines(resolve(dep), engine, prices)
            assert unpriced(lines) == [], (tier.users, engine)
            assert hourly_total(lines) > 1.0


@pytest.mark.parametrize(
    ("users", "per", "want"), [(2000, 2000, 1), (2001, 2000, 2), (15000, 2000, 8), (1, 2000, 1)]
)
def test_agent_count_is_ceil(users: int, per: int, want: int) -> None:
    assert agent_count(users, per) == want == max(1, math.ceil(users / per))


def test_sizing_applies_overrides_and_load_settings() -> None:
    dep = Deployment.model_validate(
        {
            "name": "mm-x",
            "tier": 15000,
            "operator_cidrs": [OPERATOR],
            "overrides": {"app_nodes": 3, "db_readers": 0},
            "load": {"target_users": 15000, "users_per_agent": 5000},
            "components": {"search": False},
        }
    )
    s = resolve(dep)
    assert (s.app.count, s.app.instance_type) == (3, "c7i.xlarge")
    assert s.database.readers == 0 and s.search.count == 0 and s.agents.count == 3


def test_architectures_prints_every_tier_with_cost_and_price_date() -> None:
    proc = run_cli("architectures")
    assert proc.returncode == 0, proc.stderr
    for users in PUBLISHED:
        assert f"{users:,}" in proc.stdout
    assert load_prices().as_of in proc.stdout and "$/hour" in proc.stdout
    data = json.loads(run_cli("architectures", "--json").stdout)
    assert [t["users"] for t in data] == PUBLISHED
    assert data[2]["agents"]["count"] == 2 and data[2]["usd_per_hour"] > 0  # 15,000 / 7,500


def test_init_writes_a_commented_file_that_loads_back(tmp_path: Path) -> None:
    out = tmp_path / "deployment.yaml"
    lic = tmp_path / "e.mattermost-license"
    lic.write_text("stand-in")
    proc = run_cli(
        "init", "--tier", "15000", "--operator-cidr", "198.51.100.4/32", "-o", str(out),
        "--license-file", str(lic),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.count("\n#") > 20 and "scale-to-15000-users" in text
    dep = load_model(Deployment, out)
    assert (dep.name, dep.tier, dep.operator_cidrs) == ("mm-15k", 15000, ["198.51.100.4/32"])
    assert dep.mattermost.license_file == str(lic)
    again = run_cli("init", "--tier", "15000", "-o", str(out))
    assert again.returncode == 2 and "--force" in again.stderr
    placeholder = tmp_path / "p.yaml"
    assert run_cli("init", "--tier", "200", "-o", str(placeholder), "--unlicensed").returncode == 0
    assert load_model(Deployment, placeholder).name == "mm-200"
    assert load_model(Deployment, placeholder).mattermost.unlicensed is True


def test_init_rejects_an_unknown_tier(tmp_path: Path) -> None:
    proc = run_cli("init", "--tier", "12345", "-o", str(tmp_path / "d.yaml"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "--tier" in proc.stderr and "15000" in proc.stderr


BAD = [
    ({"name": "Bad_Name"}, "name", "pattern"),
    ({"operator_cidrs": ["0.0.0.0/0"]}, "operator_cidrs", "whole internet"),
    ({"operator_cidrs": []}, "operator_cidrs", "at least 1"),
    ({"operator_cidrs": ["10.0.0.300/32"]}, "operator_cidrs", "not a CIDR"),
    ({"tier": 12000}, "tier", "published tiers"),
    ({"aws": {"endpoint": "http://x"}}, "aws.endpoint", "unknown field"),
    ({"terraform": {"backend": "s3"}}, "terraform", "state_bucket"),
    ({"database": {"engine": "mysql"}}, "database.engine", "aurora-postgresql"),
    ({"tags": {"mmload:owner": "x"}}, "tags", "reserved"),
    ({"load": {"users_per_agent": 0}}, "load.users_per_agent", "must be between 1 and"),
]


@pytest.mark.parametrize(("change", "field", "words"), BAD)
def test_bad_deployment_is_one_line_exit_2(
    tmp_path: Path, change: dict, field: str, words: str
) -> None:
    data = {"name": "mm-ok", "tier": 2000, "operator_cidrs": [OPERATOR], **change}
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(data))
    proc = run_cli("infra", "render", "-c", str(path), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(path) in lines[0] and f": {field}" in lines[0] and words in lines[0], lines[0]
    assert not (tmp_path / ".deployments").exists()


def test_missing_operator_cidrs_and_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("name: mm-ok\ntier: 2000\n")
    proc = run_cli("infra", "plan", "-c", str(path))
    assert proc.returncode == 2 and "operator_cidrs: Field required" in proc.stderr
    path.write_text("name: [unclosed\n")
    proc = run_cli("infra", "plan", "-c", str(path))
    assert proc.returncode == 2 and "invalid YAML" in proc.stderr
    proc = run_cli("infra", "apply", "-c", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2 and "file not found" in proc.stderr


def test_apply_without_a_saved_plan_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump({"name": "mm-ok", "tier": 200, "operator_cidrs": [OPERATOR]}))
    proc = run_cli("infra", "apply", "-c", str(path), cwd=tmp_path)
    assert proc.returncode == 2 and "run `mmload infra plan" in proc.stderr


def test_render_writes_one_file_per_component_and_a_private_key(tmp_path: Path) -> None:
    path = tmp_path / "deployment.yaml"
    (tmp_path / "e.license").write_text("stand-in")
    data = {"name": "mm-ok", "tier": 2000, "operator_cidrs": [OPERATOR]}
    path.write_text(yaml.safe_dump({**data, "mattermost": {"license_file": "e.license"}}))
    proc = run_cli("infra", "render", "-c", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    work = tmp_path / ".deployments" / "mm-ok"
    names = {p.stem for p in work.glob("*.tf")}
    assert {
        "network",
        "security_groups",
        "app",
        "proxy",
        "database",
        "search",
        "cache",
        "file_storage",
        "metrics",
        "agents",
        "coordinator",
        "outputs",
    } <= names
    key = work / "id_ed25519"
    assert key.stat().st_mode & 0o777 == 0o600
    assert "PRIVATE KEY" in key.read_text()
    providers = (work / "providers.tf").read_text()
    for tag in ("mmload:deployment", "mmload:owner", "mmload:expires-at"):
        assert f'"{tag}"' in providers
    expires = json.loads((work / "mmload-meta.json").read_text())["expires_at"]
    assert run_cli("infra", "render", "-c", str(path), cwd=tmp_path).returncode == 0
    assert expires in (work / "providers.tf").read_text()  # stable across renders


SERVICE_OF = {
    "aws_instance": "ec2",
    "aws_vpc": "ec2",
    "aws_subnet": "ec2",
    "aws_security_group": "ec2",
    "aws_nat_gateway": "ec2",
    "aws_eip": "ec2",
    "aws_key_pair": "ec2",
    "aws_route": "ec2",
    "aws_internet_gateway": "ec2",
    "aws_default_security_group": "ec2",
    "aws_iam": "iam",
    "aws_s3": "s3",
    "aws_rds": "rds",
    "aws_db": "rds",
    "aws_opensearch": "es",
    "aws_elasticache": "elasticache",
}


def test_iam_policy_covers_every_service_the_templates_use(tmp_path: Path) -> None:
    from mmload.config.catalog import iam_policy_text
    from mmload.provision.render import render

    policy = json.loads(iam_policy_text())
    actions = {a for st in policy["Statement"] for a in st["Action"]}
    prefixes = {a.split(":")[0] for a in actions}
    dep = Deployment.model_validate(
        {
            "name": "mm-x",
            "tier": 2000,
            "operator_cidrs": [OPERATOR],
            "overrides": {"cache_nodes": 1},
        }
    )
    rendered = render(dep, tmp_path / "w")
    types = set()
    for f in rendered.files:
        types |= set(re.findall(r'^resource "(aws_[a-z0-9_]+)"', f.read_text(), re.M))
    assert len(types) > 20
    for rtype in types:
        service = next(v for k, v in SERVICE_OF.items() if rtype.startswith(k))
        assert service in prefixes, rtype
    assert "ec2:RunInstances" in actions and "rds:CreateDBCluster" in actions
    assert "iam:PassRole" in actions and "*" not in actions


def test_docs_cost_table_matches_the_catalog() -> None:
    from tests.conftest import REPO

    doc = (REPO / "docs" / "aws.md").read_text()
    prices = load_prices()
    for tier in load_catalog().tiers:
        want = []
        for engine in ("aurora-postgresql", "postgres"):
            dep = Deployment.model_validate(
                {
                    "name": "mm-x",
                    "tier": tier.users,
                    "operator_cidrs": [OPERATOR],
                    "database": {"engine": engine},
                }
            )
            want.append(f"{hourly_total(cost_lines(resolve(dep), engine, prices)):,.2f}")
        row = next(ln for ln in doc.splitlines() if ln.startswith(f"| {tier.users:,} |"))
        assert row.rstrip().endswith(f"| {want[0]} | {want[1]} |"), row


def test_license_gate(tmp_path: Path) -> None:
    """Clustering, OpenSearch and /metrics need an Enterprise license: without one (or an
    explicit `unlicensed: true`) plan/render refuse with one line naming what needs it."""
    path = tmp_path / "deployment.yaml"
    data = {"name": "mm-lic", "tier": 15000, "operator_cidrs": [OPERATOR]}
    path.write_text(yaml.safe_dump(data))
    for cmd in ("render", "plan", "validate"):
        proc = run_cli("infra", cmd, "-c", str(path), cwd=tmp_path)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{path}: mattermost.license_file:" in lines[0], lines
        assert "2 app nodes (clustering)" in lines[0] and "OpenSearch" in lines[0], lines
        assert "/metrics" in lines[0] and "unlicensed: true" in lines[0], lines
    assert not (tmp_path / ".deployments").exists()
    path.write_text(yaml.safe_dump({**data, "mattermost": {"license_file": "nope.license"}}))
    proc = run_cli("infra", "render", "-c", str(path), cwd=tmp_path)
    assert proc.returncode == 2 and "mattermost.license_file: file not found" in proc.stderr
    both = {"license_file": "x", "unlicensed": True}
    path.write_text(yaml.safe_dump({**data, "mattermost": both}))
    proc = run_cli("infra", "render", "-c", str(path), cwd=tmp_path)
    assert proc.returncode == 2 and "contradict" in proc.stderr
    # unlicensed: what a server without a license can use, and nothing it cannot
    path.write_text(yaml.safe_dump({**data, "mattermost": {"unlicensed": True}}))
    proc = run_cli("infra", "render", "-c", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    work = tmp_path / ".deployments" / "mm-lic"
    assert "count                       = 1" in (work / "app.tf").read_text()
    assert "aws_opensearch_domain" not in (work / "search.tf").read_text()
    assert "aws_elasticache" not in (work / "cache.tf").read_text()
    proc = run_cli("init", "--tier", "2000", "-o", str(tmp_path / "i.yaml"))
    assert proc.returncode == 2 and not (tmp_path / "i.yaml").exists()
    assert "--license-file" in proc.stderr and "--unlicensed" in proc.stderr
