"""Mattermost's reference architectures and the on-demand price table, loaded from data files.

Sizes and prices are data in ``mmload/catalog/`` (``architectures.yaml``, ``prices.yaml``, each
with its source and date, and the IAM policies mmload needs); this module only reads and
validates them. It reads the folder as package data of ``mmload``, importing nothing above
``config/``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import Field

from mmload.config.base import StrictModel
from mmload.config.loader import validate_model

CATALOG_DIR = resources.files("mmload").joinpath("catalog")


class NodeGroup(StrictModel):
    """A number of identical EC2 nodes."""

    count: int = Field(ge=0)
    instance_type: str


class DatabaseSize(StrictModel):
    """One writer plus readers, all of one DB instance class."""

    writer: int = Field(ge=0, le=1)  # 0: no database (an existing server is the target)
    readers: int = Field(ge=0)
    instance_class: str


class CacheSize(StrictModel):
    """Redis (ElastiCache) nodes; 0 where Mattermost publishes none."""

    count: int = Field(ge=0)
    node_type: str


class Tier(StrictModel):
    """One published reference architecture: the sizes for up to ``users`` concurrent users."""

    users: int = Field(gt=0)
    source: str
    app: NodeGroup
    database: DatabaseSize
    search: NodeGroup
    proxy: NodeGroup
    cache: CacheSize


class LoadTestDefaults(StrictModel):
    """What a load test adds to a tier: agents, one coordinator, one metrics node."""

    users_per_agent: int = Field(gt=0)
    users_per_agent_source: str
    agent_instance_type: str
    coordinator_instance_type: str
    metrics_instance_type: str


class Catalog(StrictModel):
    """The whole reference-architecture data file."""

    docs_base: str
    read_on: str
    load_test: LoadTestDefaults
    tiers: list[Tier]

    def tier(self, users: int) -> Tier | None:
        """The tier published for exactly ``users`` concurrent users, if any."""
        return next((t for t in self.tiers if t.users == users), None)

    @property
    def tier_names(self) -> list[int]:
        """The published tier sizes, ascending."""
        return sorted(t.users for t in self.tiers)


class PriceTable(StrictModel):
    """On-demand USD/hour by service and instance type, for one region at one date."""

    region: str
    currency: str
    as_of: str
    sources: dict[str, str]
    ec2: dict[str, float]
    aurora_postgresql: dict[str, float] = Field(alias="aurora-postgresql")
    postgres: dict[str, float]
    opensearch: dict[str, float]
    elasticache: dict[str, float]
    vpc: dict[str, float]

    def db(self, engine: str) -> dict[str, float]:
        """The DB price list for an engine name used in deployment.yaml."""
        return self.aurora_postgresql if engine == "aurora-postgresql" else self.postgres


def _read(name: str) -> Any:
    text = CATALOG_DIR.joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@cache
def load_catalog() -> Catalog:
    """The shipped reference architectures."""
    return validate_model(Catalog, _read("architectures.yaml"), "mmload/catalog/architectures.yaml")


@cache
def load_prices() -> PriceTable:
    """The shipped on-demand price table."""
    return validate_model(PriceTable, _read("prices.yaml"), "mmload/catalog/prices.yaml")


def iam_policy_text() -> str:
    """The least-privilege IAM policy document mmload needs, as shipped."""
    return CATALOG_DIR.joinpath("iam-policy.json").read_text(encoding="utf-8")
