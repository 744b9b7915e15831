"""Resolve a deployment's sizes (tier + overrides + load-test additions) and estimate its cost."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mmload.config.catalog import CacheSize, DatabaseSize, NodeGroup, PriceTable, Tier, load_catalog
from mmload.config.components import Component, Registry, registry
from mmload.config.deployment import Deployment


@dataclass(frozen=True)
class Sizing:
    """Everything to build, with counts and types resolved: one field per sized component
    (``sizing:`` in the component registry)."""

    tier: Tier
    app: NodeGroup
    proxy: NodeGroup
    database: DatabaseSize
    search: NodeGroup
    cache: CacheSize
    agents: NodeGroup
    coordinator: NodeGroup
    metrics: NodeGroup
    file_storage: NodeGroup  # the S3 bucket: one, none without the Mattermost stack
    target_users: int
    users_per_agent: int

    def nodes(self, component: Component) -> tuple[int, str]:
        """(how many, of which type) the component gets; one when it has no sizing (S3)."""
        if component.sizing is None:
            return 1, ""
        size = getattr(self, component.sizing, None)
        if isinstance(size, NodeGroup):
            return size.count, size.instance_type
        if isinstance(size, DatabaseSize):
            return size.writer + size.readers, size.instance_class
        if isinstance(size, CacheSize):
            return size.count, size.node_type
        raise KeyError(f"component {component.name}: Sizing has no size {component.sizing!r}")

    def present(self, reg: Registry | None = None) -> set[str]:
        """The components this deployment has: those sized to at least one node."""
        return {c.name for c in (reg or registry()).components if self.nodes(c)[0] > 0}


def agent_count(target_users: int, users_per_agent: int) -> int:
    """Load agents needed: ceil(target users / users per agent), at least one."""
    return max(1, math.ceil(target_users / users_per_agent))


def resolve(dep: Deployment) -> Sizing:
    """The sizes for ``dep``: its tier as published, with overrides and switches applied."""
    cat = load_catalog()
    tier = cat.tier(dep.tier)
    assert tier is not None  # validated by the Deployment model
    ov, lt, load = dep.overrides, cat.load_test, dep.load
    target = load.target_users or tier.users
    per_agent = load.users_per_agent or lt.users_per_agent
    search_count = ov.search_nodes if ov.search_nodes is not None else tier.search.count
    cache_count = ov.cache_nodes if ov.cache_nodes is not None else tier.cache.count
    app_count = ov.app_nodes or tier.app.count
    if dep.mattermost.unlicensed:  # what a server without a license can use (docs/aws.md)
        app_count, search_count, cache_count = 1, 0, 0
    stack = 0 if dep.target else 1  # an existing server to load: no Mattermost stack at all
    if not stack:
        app_count = search_count = cache_count = 0
    return Sizing(
        tier=tier,
        app=NodeGroup(
            count=app_count,
            instance_type=ov.app_instance_type or tier.app.instance_type,
        ),
        proxy=NodeGroup(
            count=(ov.proxy_nodes or tier.proxy.count) * stack,
            instance_type=ov.proxy_instance_type or tier.proxy.instance_type,
        ),
        database=DatabaseSize(
            writer=stack,
            readers=(ov.db_readers if ov.db_readers is not None else tier.database.readers) * stack,
            instance_class=ov.db_instance_class or tier.database.instance_class,
        ),
        search=NodeGroup(
            count=search_count if dep.components.search else 0,
            instance_type=ov.search_instance_type or tier.search.instance_type,
        ),
        cache=CacheSize(
            count=cache_count if dep.components.cache else 0,
            node_type=ov.cache_node_type or tier.cache.node_type,
        ),
        agents=NodeGroup(
            count=agent_count(target, per_agent),
            instance_type=load.agent_instance_type or lt.agent_instance_type,
        ),
        coordinator=NodeGroup(
            count=1, instance_type=load.coordinator_instance_type or lt.coordinator_instance_type
        ),
        metrics=NodeGroup(
            count=1, instance_type=load.metrics_instance_type or lt.metrics_instance_type
        ),
        file_storage=NodeGroup(count=stack, instance_type="s3"),
        target_users=target,
        users_per_agent=per_agent,
    )


@dataclass(frozen=True)
class CostLine:
    """One component's share of the hourly cost; ``unit_price`` None when the type is unpriced."""

    component: str
    count: int
    instance_type: str
    unit_price: float | None

    @property
    def hourly(self) -> float:
        """USD per hour for all ``count`` nodes (0 when unpriced)."""
        return self.count * (self.unit_price or 0.0)


def price_tables(prices: PriceTable, engine: str) -> dict[str, dict[str, float]]:
    """The price list of each ``price:`` name of the component registry, for a DB engine."""
    return {
        "ec2": prices.ec2,
        "database": prices.db(engine),
        "opensearch": prices.opensearch,
        "elasticache": prices.elasticache,
    }


def cost_lines(
    sizing: Sizing, engine: str, prices: PriceTable, *, nat_gateway: bool = True
) -> list[CostLine]:
    """Per-component hourly cost (each priced component of the registry) from the shipped
    on-demand price table."""
    tables = price_tables(prices, engine)
    lines = []
    for comp in registry().components:
        count, kind = sizing.nodes(comp)
        if comp.price and count:
            lines.append(CostLine(comp.name, count, kind, tables[comp.price].get(kind)))
    if nat_gateway:
        lines.append(CostLine("nat-gateway", 1, "nat_gateway", prices.vpc["nat_gateway"]))
    return lines


def hourly_total(lines: list[CostLine]) -> float:
    """Sum of all priced lines, USD per hour."""
    return sum(line.hourly for line in lines)


def unpriced(lines: list[CostLine]) -> list[str]:
    """Instance types missing from the price table (their cost is not in the total)."""
    return sorted({line.instance_type for line in lines if line.unit_price is None})
