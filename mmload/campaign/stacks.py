"""An architecture's Mattermost stack (what a customer runs) and its cost per hour.

A stack is the app nodes, the proxy, the database, search and cache: the components of the
registry that a deployment has without the load test (no agents, coordinator or metrics node,
no NAT gateway, which every architecture has alike). Its sizes come from a catalog tier
(``tier-15000`` or ``15000`` names one) or, for Mattermost's published runs, from the run's own
``config/deployer.json``; its price from the shipped on-demand table.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mmload.config.catalog import CacheSize, DatabaseSize, NodeGroup, PriceTable, Tier, load_catalog
from mmload.config.components import registry
from mmload.config.deployment import DatabaseSettings
from mmload.config.loader import field_path
from mmload.errors import UserError
from mmload.provision.sizing import CostLine, price_tables

# Registry sizing fields that belong to the Mattermost stack (the rest is the load test's).
STACK_PARTS = ("app", "proxy", "database", "search", "cache")
DEFAULT_ENGINE: str = DatabaseSettings.model_fields["engine"].default
_TIER_NAME = re.compile(r"^(?:tier-?)?(\d+)$")


@dataclass(frozen=True)
class Stack:
    """The sizes of an architecture's Mattermost stack; ``origin`` says where they were read."""

    app: NodeGroup
    proxy: NodeGroup
    database: DatabaseSize
    search: NodeGroup
    cache: CacheSize
    engine: str
    origin: str

    def sizes(self) -> tuple[object, ...]:
        """What two stacks must share to be the same architecture (not where they were read;
        not the type of a part with no nodes)."""
        return (*(self.size(part) for part in STACK_PARTS), self.engine)

    def size(self, part: str) -> tuple[int, str]:
        """(how many, of which type) of one part; ``(0, "")`` when absent."""
        count, kind = self.nodes(part)
        return (count, kind) if count else (0, "")

    def nodes(self, part: str) -> tuple[int, str]:
        """(how many, of which type) of one part of the stack."""
        size = getattr(self, part)
        if isinstance(size, DatabaseSize):
            return size.writer + size.readers, size.instance_class
        if isinstance(size, CacheSize):
            return size.count, size.node_type
        return size.count, size.instance_type


def tier_of_name(name: str | None) -> Tier | None:
    """The catalog tier an architecture name means: ``tier-15000``, ``tier15000`` or ``15000``."""
    m = _TIER_NAME.match((name or "").strip().lower())
    return load_catalog().tier(int(m.group(1))) if m else None


def tier_name(tier: Tier) -> str:
    """The architecture name of a catalog tier, as campaign records carry it."""
    return f"tier-{tier.users}"


def stack_of_tier(tier: Tier, engine: str = DEFAULT_ENGINE) -> Stack:
    """A published tier's stack, as the catalog sizes it."""
    return Stack(
        app=tier.app,
        proxy=tier.proxy,
        database=tier.database,
        search=tier.search,
        cache=tier.cache,
        engine=engine,
        origin=f"catalog tier {tier.users:,} ({tier.source})",
    )


class _Db(BaseModel):
    model_config = ConfigDict(extra="ignore")
    InstanceCount: int = Field(ge=1, le=16)
    InstanceType: str
    InstanceEngine: str = DEFAULT_ENGINE


class _Search(BaseModel):
    model_config = ConfigDict(extra="ignore")
    InstanceCount: int = Field(0, ge=0, le=64)
    InstanceType: str = ""


class _Deployer(BaseModel):
    """The fields of load-test-ng's deployer.json that size the stack (the rest is ignored)."""

    model_config = ConfigDict(extra="ignore")
    AppInstanceCount: int = Field(ge=1, le=256)
    AppInstanceType: str
    ProxyInstanceType: str = ""
    TerraformDBSettings: _Db
    ElasticSearchSettings: _Search = Field(default_factory=_Search)


def stack_from_deployer(path: Path) -> Stack:
    """The stack load-test-ng deployed from its ``deployer.json``.

    load-test-ng puts a proxy in front only when there is more than one app node (Ceiling Tests
    v2 README, deployer.json section); the first DB instance is the writer, the rest readers.
    """
    try:
        d = _Deployer.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read the deployer file: {exc}", source=str(path)) from None
    except ValidationError as err:
        e = err.errors(include_url=False)[0]
        raise UserError(e["msg"], source=str(path), field=field_path(tuple(e["loc"]))) from None
    db, es = d.TerraformDBSettings, d.ElasticSearchSettings
    return Stack(
        app=NodeGroup(count=d.AppInstanceCount, instance_type=d.AppInstanceType),
        proxy=NodeGroup(
            count=1 if d.AppInstanceCount > 1 else 0, instance_type=d.ProxyInstanceType
        ),
        database=DatabaseSize(
            writer=1, readers=db.InstanceCount - 1, instance_class=db.InstanceType
        ),
        search=NodeGroup(count=es.InstanceCount, instance_type=es.InstanceType),
        cache=CacheSize(count=0, node_type=""),
        engine=db.InstanceEngine,
        origin=str(path),
    )


@dataclass(frozen=True)
class Cost:
    """A stack's on-demand cost per hour; ``unpriced`` names types the price table lacks."""

    lines: list[CostLine]
    usd_per_hour: float
    unpriced: list[str]
    as_of: str
    region: str


def stack_cost(stack: Stack, prices: PriceTable) -> Cost:
    """The stack's cost per hour, one line per present part, from the shipped price table."""
    tables = price_tables(prices, stack.engine)
    lines = []
    for comp in registry().components:
        if comp.sizing not in STACK_PARTS or not comp.price:
            continue
        count, kind = stack.nodes(comp.sizing)
        if count:
            lines.append(CostLine(comp.name, count, kind, tables[comp.price].get(kind)))
    return Cost(
        lines=lines,
        usd_per_hour=sum(line.hourly for line in lines),
        unpriced=sorted({line.instance_type for line in lines if line.unit_price is None}),
        as_of=prices.as_of,
        region=prices.region,
    )


def describe(stack: Stack) -> list[tuple[str, str]]:
    """(component, "N x type") for each part present, in registry order."""
    out = []
    for part in STACK_PARTS:
        count, kind = stack.nodes(part)
        if not count:
            continue
        if part == "database":
            db = stack.database
            text = f"1 writer + {db.readers} reader(s) x {kind} ({stack.engine})"
        else:
            text = f"{count} x {kind}"
        out.append((part, text))
    return out
