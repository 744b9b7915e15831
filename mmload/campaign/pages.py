"""Reference architectures as documentation pages, in the manner of GitLab's.

One page per catalog tier (its components and sizes, its cost per hour, what a load test of it
adds) and one per measured architecture that is no catalog tier, each with the supported users
validated per tested version (the measurements of exactly its sizes, with links to the records),
the test method and, for a tier, the measured architectures that differ from it in search,
proxy or cache only; plus an index. A measurement validates a tier only when every size
matches: similar is said as such, never counted.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mmload.campaign.evidence import Measurement
from mmload.campaign.render import render
from mmload.campaign.stacks import (
    STACK_PARTS,
    Cost,
    Stack,
    describe,
    stack_cost,
    stack_of_tier,
    tier_name,
)
from mmload.config.catalog import Catalog, Tier, load_catalog, load_prices
from mmload.config.deployment import Deployment
from mmload.errors import UserError
from mmload.files import write_atomic
from mmload.provision.init_file import PLACEHOLDER_CIDR
from mmload.provision.sizing import CostLine, cost_lines, resolve
from mmload.report.ceiling import architecture_key, natural_key

INDEX = "index.md"
LOAD_TEST_PARTS = ("agents", "coordinator", "metrics", "nat-gateway")


@dataclass
class Page:
    """One architecture's page: a catalog tier, or an architecture only measured."""

    slug: str
    title: str
    tier: Tier | None
    stack: Stack | None
    cost: Cost | None
    validated: list[Measurement] = field(default_factory=list)  # exactly these sizes
    similar: list[tuple[Measurement, list[str]]] = field(default_factory=list)
    load_test: list[CostLine] = field(default_factory=list)

    @property
    def file(self) -> str:
        """The page's file name in the docs folder."""
        return f"{self.slug}.md"

    @property
    def latest(self) -> Measurement | None:
        """The validation of the latest tested version."""
        return self.validated[-1] if self.validated else None


def load_test_lines(tier: Tier) -> list[CostLine]:
    """What a load test of the tier adds (agents, coordinator, metrics, NAT), as `mmload
    architectures` sizes and prices it."""
    dep = Deployment.model_validate(
        {"name": "catalog", "tier": tier.users, "operator_cidrs": [PLACEHOLDER_CIDR]}
    )
    lines = cost_lines(resolve(dep), dep.database.engine, load_prices())
    return [line for line in lines if line.component in LOAD_TEST_PARTS]


def differences(a: Stack, b: Stack) -> list[str]:
    """The parts in which stack ``b`` differs from ``a``, in words."""
    words = dict(describe(b))
    out = []
    for part in STACK_PARTS:
        if a.size(part) != b.size(part) or (part == "database" and a.engine != b.engine):
            out.append(f"{part}: {words.get(part, 'none')}")
    return out


def slug(name: str) -> str:
    """A file-name-safe form of an architecture name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "unnamed"


def by_version(ms: list[Measurement]) -> list[Measurement]:
    """Measurements in version order."""
    return sorted(ms, key=lambda m: natural_key(m.version))


def tier_page(tier: Tier, measurements: list[Measurement]) -> Page:
    """A catalog tier's page with its validations and similar measured architectures."""
    stack = stack_of_tier(tier)
    page = Page(
        slug=tier_name(tier),
        title=f"Up to {tier.users:,} users",
        tier=tier,
        stack=stack,
        cost=stack_cost(stack, load_prices()),
        load_test=load_test_lines(tier),
    )
    for m in measurements:
        if m.stack is None:
            continue
        if m.stack.sizes() == stack.sizes():
            page.validated.append(m)
        elif all(m.stack.size(p) == stack.size(p) for p in ("app", "database")):
            page.similar.append((m, differences(stack, m.stack)))
    page.validated = by_version(page.validated)
    return page


def measured_pages(measurements: list[Measurement], tiers: list[Page]) -> list[Page]:
    """A page per measured architecture that validates no tier (all its versions on it)."""
    placed = {id(m) for p in tiers for m in p.validated}
    groups: dict[str, list[Measurement]] = {}
    for m in measurements:
        if id(m) not in placed:
            groups.setdefault(m.architecture, []).append(m)
    pages = []
    for arch in sorted(groups, key=architecture_key):
        ms = by_version(groups[arch])
        stack = ms[-1].stack
        pages.append(
            Page(
                slug=f"measured-{slug(arch)}",
                title=f"Measured architecture {arch}",
                tier=None,
                stack=stack,
                cost=ms[-1].cost,
                validated=ms,
            )
        )
    return pages


def build_pages(measurements: list[Measurement], cat: Catalog | None = None) -> list[Page]:
    """Every tier's page, then every other measured architecture's."""
    cat = cat or load_catalog()
    tiers = [tier_page(t, measurements) for t in sorted(cat.tiers, key=lambda t: t.users)]
    return tiers + measured_pages(measurements, tiers)


def records_link(out: Path, source: str) -> str:
    """The record's path relative to the docs folder (absolute when on another drive)."""
    try:
        return os.path.relpath(Path(source).resolve(), out.resolve())
    except ValueError:
        return str(Path(source).resolve())


def write_docs(out: Path, measurements: list[Measurement], skipped: list[str]) -> list[Path]:
    """Write every page and the index into ``out``; the files written."""
    if out.exists() and not out.is_dir():
        raise UserError("not a directory", source="command line", field=f"--docs {out}")
    out.mkdir(parents=True, exist_ok=True)
    cat, prices = load_catalog(), load_prices()
    pages = build_pages(measurements, cat)
    ctx = {"catalog": cat, "prices": prices, "describe": describe}
    written = []
    for page in pages:
        text = render("architecture.md.j2", page=page, link=lambda s: records_link(out, s), **ctx)
        written.append(write_text(out / page.file, text))
    index = render("index.md.j2", pages=pages, skipped=skipped, **ctx)
    written.append(write_text(out / INDEX, index))
    return written


def write_text(path: Path, text: str) -> Path:
    """One page, written atomically."""
    write_atomic(path, text)
    return path
