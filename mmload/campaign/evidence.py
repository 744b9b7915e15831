"""Measured supported users per architecture and version, with their stack, cost and method.

Read from ceiling results as `mmload ceiling` reads them (mmload run records, Mattermost's
load-test-ng reports through the ltng import) and summarised by the same ``ceiling_rows``; each
(architecture, version) row gets the stack it ran on, its cost per hour, and how it was tested.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmload import record
from mmload.campaign.stacks import (
    Cost,
    Stack,
    stack_cost,
    stack_from_deployer,
    stack_of_tier,
    tier_name,
    tier_of_name,
)
from mmload.config.catalog import load_prices
from mmload.report.ceiling import ceiling_rows
from mmload.report.model import RunSummary
from mmload.report.sources import load_runs

COUNTED = (None, "completed")  # the outcomes `mmload ceiling` counts


@dataclass(frozen=True)
class Run:
    """One counted run: its name, supported users and where its record is."""

    name: str
    supported_users: float
    source: str


@dataclass
class Method:
    """How the runs were made: the scenario, the SLOs that bound the ceiling, the repeats."""

    scenario: list[str] = field(default_factory=list)
    slos: list[str] = field(default_factory=list)
    repeats: int = 0


@dataclass
class Measurement:
    """Supported users of one architecture at one version, over its repeats."""

    architecture: str
    version: str | None
    runs: list[Run]
    mean: float
    min: float
    max: float
    stdev: float | None
    stack: Stack | None
    cost: Cost | None
    problem: str | None  # why there is no stack or no full price
    method: Method

    @property
    def spread_pct(self) -> float | None:
        """Sample stdev as % of the mean (None for one run)."""
        return self.stdev / self.mean * 100 if self.stdev is not None and self.mean else None

    @property
    def priced(self) -> bool:
        """True when every part of its stack has a price."""
        return self.cost is not None and not self.cost.unpriced

    def summary(self) -> dict[str, Any]:
        """JSON-friendly identity, spread, runs and cost."""
        return {
            "architecture": self.architecture,
            "version": self.version,
            "runs": [vars(r) for r in self.runs],
            "mean": self.mean,
            "min": self.min,
            "max": self.max,
            "stdev": self.stdev,
            "spread_pct": self.spread_pct,
            "usd_per_hour": self.cost.usd_per_hour if self.priced and self.cost else None,
            "sizes_from": self.stack.origin if self.stack else None,
            "problem": self.problem,
        }


def read_measurements(paths: list[Path]) -> tuple[list[Measurement], list[str]]:
    """Every (architecture, version) measured under ``paths``, and the runs skipped (why)."""
    damaged: list[str] = []
    runs = load_runs(list(paths), detail="head", skipped=damaged)
    for r in runs:  # `15000`, `tier15000` and `tier-15000` are one architecture
        if r.kind == "mmload" and (tier := tier_of_name(r.architecture)):
            r.architecture = tier_name(tier)
    rows, skipped = ceiling_rows(runs)
    counted = [
        r for r in runs if r.supported_users is not None and r.outcome in (None, "completed")
    ]
    out = []
    for row in rows:
        members = [
            r for r in counted if (r.architecture, r.label) == (row["architecture"], row["label"])
        ]
        out.append(measurement(row, members))
    return out, damaged + skipped


def measurement(row: dict[str, Any], members: list[RunSummary]) -> Measurement:
    """A ceiling row with its runs, its stack and cost, and its method."""
    stack, problem = stack_of_runs(row["architecture"], members)
    cost = stack_cost(stack, load_prices()) if stack else None
    if cost and cost.unpriced:
        problem = f"no price for {', '.join(cost.unpriced)} in the price table"
    return Measurement(
        architecture=str(row["architecture"]),
        version=row["label"],
        runs=[Run(r.name, float(r.supported_users or 0), r.source) for r in members],
        mean=row["mean"],
        min=row["min"],
        max=row["max"],
        stdev=row["stdev"],
        stack=stack,
        cost=cost,
        problem=problem,
        method=method_of(members),
    )


def stack_of_runs(arch: str | None, runs: list[RunSummary]) -> tuple[Stack | None, str | None]:
    """The one stack the runs ran on, or None and why not."""
    stacks = []
    for r in runs:
        deployer = Path(r.source).parent / "config" / "deployer.json"
        if r.kind == "ltng" and deployer.is_file():
            stacks.append(stack_from_deployer(deployer))
        elif tier := tier_of_name(arch):
            stacks.append(stack_of_tier(tier))
        else:
            return None, (
                f"sizes unknown: {arch!r} is not a catalog tier (tier-N) and {r.name} has no "
                "load-test-ng config/deployer.json"
            )
    if len({s.sizes() for s in stacks}) > 1:
        return None, "sizes unknown: its runs ran on different sizes"
    return stacks[0], None


def method_of(runs: list[RunSummary]) -> Method:
    """The scenarios and SLOs of the runs, each said once, and how many runs."""
    m = Method(repeats=len(runs))
    for r in runs:
        scenario, slos = ltng_method(r) if r.kind == "ltng" else mmload_method(r)
        m.scenario += [s for s in scenario if s not in m.scenario]
        m.slos += [s for s in slos if s not in m.slos]
    return m


def mmload_method(run: RunSummary) -> tuple[list[str], list[str]]:
    """The scenario and the SLOs from the record's run.json."""
    meta = record.read_meta(run.source)
    kind = meta.scenario_kind or "?"
    scenario = [f"mmload scenario {meta.scenario.name or '?'} ({kind})"]
    slos = [
        f"{s.name} {s.op} {record.number(s.threshold)}"
        + (f" ({s.description})" if s.description else "")
        for s in meta.slos
    ]
    return scenario, slos


def ltng_method(run: RunSummary) -> tuple[list[str], list[str]]:
    """load-test-ng's unbounded test: the coordinator's user steps and its alerting queries."""
    path = Path(run.source).parent / "config" / "coordinator.json"
    try:
        coord = json.loads(path.read_text(encoding="utf-8"))
        queries = coord.get("MonitorConfig", {}).get("Queries", [])
        step = (
            f"+{coord['NumUsersInc']} / -{coord['NumUsersDec']} users every "
            f"{coord['RestTimeSec']} s"
        )
    except (OSError, json.JSONDecodeError, KeyError, AttributeError, TypeError):
        return ["load-test-ng unbounded (ceiling) test"], []
    slos = [
        f"{q.get('Description', '?')} < {q.get('Threshold')}"
        + (f" ({q['Legend']})" if q.get("Legend") else "")
        for q in queries
        if isinstance(q, dict) and q.get("Alert", True)
    ]
    return [f"load-test-ng unbounded (ceiling) test: {step} while healthy"], slos


def covered_versions(measurements: list[Measurement]) -> list[str]:
    """The versions measured (labels), as found."""
    return list(dict.fromkeys(str(m.version) for m in measurements))
