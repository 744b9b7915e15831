"""No drift on a later apply (issue 12 item 7), read from the rendered Terraform with python-hcl2:
instances keep the image they were created with, pinned engine versions take no automatic
upgrade, and the AZs come from deployment.yaml, preflight's pick or AWS, never a guess. (The
behaviour itself, a re-plan after the image changed replacing nothing, is in
test_lifecycle_moto.py against moto.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mmload.config.components import registry
from mmload.provision.render import render, write_zones
from tests.provision.test_rendered_settings import deployment, parsed, resource

# resources with an engine version and its automatic-upgrade switch
UPGRADABLE = {
    "aws_rds_cluster_instance": "auto_minor_version_upgrade",
    "aws_db_instance": "auto_minor_version_upgrade",
    "aws_elasticache_replication_group": "auto_minor_version_upgrade",
}


def blocks(folder: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """Every resource of every rendered file: (type, name, body)."""
    out = []
    for path in sorted(folder.glob("*.tf")):
        for block in parsed(folder, path.stem).get("resource", []):
            for kind, named in block.items():
                out += [(kind, name, body) for name, body in named.items()]
    return out


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("drift")
    out = {"aurora": root / "aurora", "rds": root / "rds"}
    render(deployment(tier=200000), out["aurora"])
    render(deployment(tier=15000, database={"engine": "postgres"}), out["rds"])
    return out


def test_every_instance_keeps_its_image(variants: dict[str, Path]) -> None:
    instances = [(n, b) for k, n, b in blocks(variants["aurora"]) if k == "aws_instance"]
    assert {n for n, _ in instances} == {c.name for c in registry().host_components}
    for name, body in instances:
        (lifecycle,) = body["lifecycle"]
        assert "ami" in lifecycle["ignore_changes"], name


def test_pinned_engines_take_no_automatic_upgrade(variants: dict[str, Path]) -> None:
    seen = set()
    for folder in variants.values():
        for kind, name, body in blocks(folder):
            if kind in UPGRADABLE:
                seen.add(kind)
                assert body[UPGRADABLE[kind]] is False, (kind, name)
            if kind == "aws_rds_cluster" or (kind == "aws_db_instance" and name == "writer"):
                assert re.fullmatch(r"\d+\.\d+", body["engine_version"]), (kind, name)
    assert seen == set(UPGRADABLE)
    search = resource(parsed(variants["aurora"], "search"), "aws_opensearch_domain", "search")
    assert search["engine_version"].startswith("OpenSearch_")
    assert search["software_update_options"] == [{"auto_software_update_enabled": False}]
    cache = resource(
        parsed(variants["aurora"], "cache"), "aws_elasticache_replication_group", "cache"
    )
    assert re.fullmatch(r"\d+\.\d+", cache["engine_version"])


def test_zones_come_from_aws_when_none_is_named_or_picked(variants: dict[str, Path]) -> None:
    providers = parsed(variants["aurora"], "providers")
    (data,) = [d["aws_availability_zones"]["available"] for d in providers["data"]]
    assert data["filter"] == [{"name": "zone-type", "values": ["availability-zone"]}]
    (names,) = [b for b in providers["locals"] if "azs" in b]
    assert names["azs"] == "${slice(data.aws_availability_zones.available.names, 0, 2)}"
    text = "".join(p.read_text() for p in variants["aurora"].glob("*.tf"))
    assert not re.search(r'"us-east-1[a-z]"', text)  # no zone guessed from the region's name


def test_zones_named_or_picked_by_preflight_are_used_as_given(tmp_path: Path) -> None:
    named = tmp_path / "named"
    render(deployment(tier=2000, availability_zones=["us-east-1c", "us-east-1d"]), named)
    picked = tmp_path / "picked"
    write_zones(picked, ["us-east-1f", "us-east-1b"])
    render(deployment(tier=2000), picked)
    for folder, zones in (
        (named, ["us-east-1c", "us-east-1d"]),
        (picked, ["us-east-1f", "us-east-1b"]),
    ):
        providers = parsed(folder, "providers")
        assert "data" not in providers
        (names,) = [b for b in providers["locals"] if "azs" in b]
        assert names["azs"] == zones
