"""Mattermost's Ceiling Tests v2, read independently of mmload: supported users and $/h per
architecture straight from the dataset's files and the shipped price table (plain json/yaml)."""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PRICES = yaml.safe_load((REPO / "mmload" / "catalog" / "prices.yaml").read_text())
_USERS = re.compile(r"^Num users:\s*(\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Arch:
    """One published architecture: its runs' supported users and its stack's $/h."""

    name: str
    runs: dict[str, int]  # run folder -> Num users
    usd_per_hour: float

    @property
    def mean(self) -> float:
        return statistics.fmean(self.runs.values())


def stack_price(deployer: dict) -> float:
    """App nodes + a proxy when there is more than one app node + DB instances + ES nodes."""
    ec2, db, es = PRICES["ec2"], PRICES["aurora-postgresql"], PRICES["opensearch"]
    apps = deployer["AppInstanceCount"]
    total = apps * ec2[deployer["AppInstanceType"]]
    if apps > 1:
        total += ec2[deployer["ProxyInstanceType"]]
    dbs = deployer["TerraformDBSettings"]
    assert dbs["InstanceEngine"] == "aurora-postgresql"
    total += dbs["InstanceCount"] * db[dbs["InstanceType"]]
    search = deployer["ElasticSearchSettings"]
    if search["InstanceCount"]:
        total += search["InstanceCount"] * es[search["InstanceType"]]
    return total


def published(v2: Path) -> dict[str, Arch]:
    """Every architecture folder of ceiling-tests/v2."""
    out = {}
    for folder in sorted(p for p in v2.iterdir() if p.name.startswith("ct")):
        runs = {
            run.name: int(_USERS.search((run / "results.txt").read_text()).group(1))
            for run in sorted(folder.iterdir())
        }
        first = sorted(folder.iterdir())[0]
        deployer = json.loads((first / "config" / "deployer.json").read_text())
        out[folder.name] = Arch(folder.name, runs, stack_price(deployer))
    return out


def cheapest_covering(archs: dict[str, Arch], need: float) -> Arch | None:
    """The cheapest architecture whose mean covers ``need`` (ties: the larger mean)."""
    covering = [a for a in archs.values() if a.mean >= need]
    return min(covering, key=lambda a: (a.usd_per_hour, -a.mean), default=None)


# README row name (`**2XL.552**`) -> folder name (`ct2XL552`), as tests/report/test_ltng.py reads it
_ROW = re.compile(r"^\|\s*\*\*(\d*XL|L)\.(\d{3})\*\*\s*\|(.*)\|\s*$")


def readme_averages(v2: Path) -> dict[str, int]:
    """Architecture -> the average supported users the README publishes (a whole number)."""
    out = {}
    for line in (v2 / "README.md").read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line.strip())
        if m:
            cells = [c.strip() for c in m.group(3).split("|")]
            users = next(c for c in cells if re.fullmatch(r"\*\*\d+\*\*", c))
            out[f"ct{m.group(1)}{m.group(2)}"] = int(users.strip("*"))
    return out


def deployer_of(v2: Path, arch: str) -> dict:
    """The first run's deployer.json of an architecture."""
    first = sorted((v2 / arch).iterdir())[0]
    return json.loads((first / "config" / "deployer.json").read_text())


def same_as_tier(deployer: dict, tier: dict) -> bool:
    """Whether load-test-ng deployed exactly a catalog tier's stack (absent parts: no type)."""

    def part(count: int, kind: str) -> tuple[int, str]:
        return (count, kind) if count else (0, "")

    apps = deployer["AppInstanceCount"]
    db, es = deployer["TerraformDBSettings"], deployer["ElasticSearchSettings"]
    ours = (
        part(apps, deployer["AppInstanceType"]),
        part(int(apps > 1), deployer["ProxyInstanceType"]),
        part(db["InstanceCount"], db["InstanceType"]),
        part(es["InstanceCount"], es["InstanceType"]),
        (0, ""),  # load-test-ng deployed no Redis in v2
    )
    theirs = (
        part(tier["app"]["count"], tier["app"]["instance_type"]),
        part(tier["proxy"]["count"], tier["proxy"]["instance_type"]),
        part(1 + tier["database"]["readers"], tier["database"]["instance_class"]),
        part(tier["search"]["count"], tier["search"]["instance_type"]),
        part(tier["cache"]["count"], tier["cache"]["node_type"]),
    )
    return ours == theirs
