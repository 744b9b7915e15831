"""Properties of the rendered Terraform read with python-hcl2 (no plan needed): the settings the
Mattermost servers depend on (Redis reachable without TLS, one endpoint per database reader, the
search node count in the outputs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2
import pytest

from mmload.config.deployment import Deployment
from mmload.provision.render import render
from tests.provision.conftest import OPERATOR


def deployment(**fields: Any) -> Deployment:
    return Deployment.model_validate(
        {"name": "mm-set", "operator_cidrs": [OPERATOR], "owner": "ci", **fields}
    )


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 200,000 tier: every component present (Redis, OpenSearch, Aurora readers)."""
    out = tmp_path_factory.mktemp("tier-200000")
    render(deployment(tier=200000), out)
    return out


def plain(value: Any) -> Any:
    """python-hcl2's output without the quotes it keeps around labels and string literals."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str) and len(value) > 1 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parsed(folder: Path, name: str) -> dict[str, Any]:
    return plain(hcl2.loads((folder / f"{name}.tf").read_text()))


def resource(tf: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    return next(r[kind][name] for r in tf["resource"] if kind in r and name in r[kind])


def local_value(tf: dict[str, Any], name: str) -> Any:
    return next(block[name] for block in tf["locals"] if name in block)


def test_redis_has_no_in_transit_tls_and_only_the_app_nodes_reach_it(big: Path) -> None:
    """Mattermost's Redis client has no TLS (CacheSettings has no such setting), so a TLS-only
    ElastiCache would refuse every app node: the 200,000 tier would never start. The security
    group is what restricts it: tcp/6379 from the app nodes' group only."""
    group = resource(parsed(big, "cache"), "aws_elasticache_replication_group", "cache")
    assert group["transit_encryption_enabled"] is False
    assert group["at_rest_encryption_enabled"] is True
    rules = [
        rule
        for block in parsed(big, "security_groups")["resource"]
        for rule in block.get("aws_security_group_rule", {}).values()
        if rule["security_group_id"] == "${aws_security_group.cache.id}"
        and rule["type"] == "ingress"
    ]
    assert [(r["source_security_group_id"], r["from_port"], r["to_port"]) for r in rules] == [
        ("${aws_security_group.app.id}", 6379, 6379)
    ]


def test_reader_endpoints_name_each_reader_instance(big: Path) -> None:
    """One DSN per reader (SqlSettings.DataSourceReplicas): the outputs list every reader
    instance's own endpoint, not the cluster's single reader endpoint."""
    value = local_value(parsed(big, "database"), "db_reader_endpoints")
    assert "aws_rds_cluster_instance.main" in value and "i.endpoint" in value
    assert "!i.writer" in value and "reader_endpoint" not in value


def test_rds_postgres_readers_are_instances(tmp_path: Path) -> None:
    render(deployment(tier=15000, database={"engine": "postgres"}), tmp_path)
    value = local_value(parsed(tmp_path, "database"), "db_reader_endpoints")
    assert value == "${aws_db_instance.reader[*].address}"


def test_search_output_names_its_node_count(big: Path) -> None:
    search = local_value(parsed(big, "search"), "search")
    count = resource(parsed(big, "search"), "aws_opensearch_domain", "search")["cluster_config"]
    assert search["nodes"] == count[0]["instance_count"] > 1
