"""Small synthetic ceiling records (run.json only) and catalog prices read from the YAML."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mmload import record
from tests.campaign.published import PRICES, REPO


def write_run(
    root: Path, name: str, arch: str, label: str, users: float, outcome: str = "completed"
) -> None:
    """A ceiling run record with only its run.json (all advise reads), valid as RunMeta."""
    meta = {
        "schema": record.SCHEMA_VERSION,
        "run_id": name,
        "scenario": {"name": "ceiling", "kind": "ceiling"},
        "label": label,
        "architecture": arch,
        "outcome": outcome,
        "supported_users": users,
        "slos": [
            {"name": "login_p99_ms", "op": "<", "threshold": 2000, "value": 900, "passed": True}
        ],
    }
    record.RunMeta.model_validate(meta)
    (root / name).mkdir(parents=True)
    (root / name / "run.json").write_text(json.dumps(meta))


def tier_price(users: int) -> float:
    """A catalog tier's Mattermost stack per hour, from the YAML files themselves (Aurora)."""
    cat = yaml.safe_load((REPO / "mmload" / "catalog" / "architectures.yaml").read_text())
    t = next(t for t in cat["tiers"] if t["users"] == users)
    ec2, db = PRICES["ec2"], PRICES["aurora-postgresql"]
    total = t["app"]["count"] * ec2[t["app"]["instance_type"]]
    total += t["proxy"]["count"] * ec2[t["proxy"]["instance_type"]]
    total += (1 + t["database"]["readers"]) * db[t["database"]["instance_class"]]
    total += t["search"]["count"] * PRICES["opensearch"][t["search"]["instance_type"]]
    total += t["cache"]["count"] * PRICES["elasticache"][t["cache"]["node_type"]]
    return total
