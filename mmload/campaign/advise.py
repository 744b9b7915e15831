"""Sizing advice: the cheapest measured architecture whose supported users cover a need.

The need is ``users x (1 + headroom)``. An architecture covers it when the **mean** supported
users of its repeats (the figure Mattermost publishes) is at least that; the evidence shows each
run and the spread, and says when a single repeat fell below. Only architectures whose every
part has a price are ranked ($/h of the Mattermost stack from the shipped price table); the
others are listed with the reason. One version is judged: ``--version``, else each
architecture's latest measured version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mmload.campaign.evidence import Measurement, covered_versions
from mmload.campaign.render import render
from mmload.campaign.stacks import describe
from mmload.config.campaign import AdviseOptions
from mmload.errors import UserError
from mmload.report.ceiling import architecture_key, natural_key

SCHEMA = "mmload.advise/1"


@dataclass
class Advice:
    """The request, the pick (None: nothing covers it), and every candidate considered."""

    options: AdviseOptions
    required: float
    pick: Measurement | None
    ranked: list[Measurement]  # priced, cheapest first
    unranked: list[Measurement]  # no stack or no full price
    skipped: list[str]

    def covers(self, m: Measurement) -> bool:
        """True when the measurement's mean supported users cover the need."""
        return m.mean >= self.required

    def document(self) -> dict[str, Any]:
        """The advice as JSON."""
        return {
            "schema": SCHEMA,
            "users": self.options.users,
            "headroom_pct": self.options.headroom,
            "required_users": self.required,
            "version": self.options.version,
            "covered": self.pick is not None,
            "pick": self.pick.summary() if self.pick else None,
            "candidates": [{**m.summary(), "covers": self.covers(m)} for m in self.ranked],
            "unranked": [m.summary() for m in self.unranked],
            "skipped": self.skipped,
        }

    def markdown(self) -> str:
        """The advice for a reader."""
        return render("advise.md.j2", advice=self, describe=describe)


def one_version(measurements: list[Measurement], version: str | None) -> list[Measurement]:
    """The measurements of ``version``, or each architecture's latest version."""
    if version is not None:
        chosen = [m for m in measurements if m.version == version]
        if not chosen:
            seen = ", ".join(covered_versions(measurements))
            raise UserError(
                f"no measurement of version {version!r} (measured: {seen})",
                source="command line",
                field="--version",
            )
        return chosen
    latest: dict[str, Measurement] = {}
    for m in sorted(measurements, key=lambda m: natural_key(m.version)):
        latest[m.architecture] = m
    return list(latest.values())


def arch_key(m: Measurement) -> tuple[object, ...]:
    """Architectures in their natural order (L < XL < 2XL, 200 < 2000)."""
    return architecture_key(m.architecture)


def advise(measurements: list[Measurement], opts: AdviseOptions, skipped: list[str]) -> Advice:
    """The cheapest priced architecture covering ``users x (1 + headroom)``, with the rest."""
    chosen = one_version(measurements, opts.version)
    required = opts.users * (1 + opts.headroom / 100)
    ranked = sorted(
        (m for m in chosen if m.priced),
        key=lambda m: (
            m.cost.usd_per_hour if m.cost else 0.0,
            -m.mean,
            architecture_key(m.architecture),
        ),
    )
    unranked = sorted(
        (m for m in chosen if not m.priced), key=lambda m: architecture_key(m.architecture)
    )
    pick = next((m for m in ranked if m.mean >= required), None)
    return Advice(opts, required, pick, ranked, unranked, skipped)


def shortfall(advice: Advice) -> str:
    """One line for the exit status when nothing covers the need."""
    best = max(advice.ranked, key=lambda m: m.mean, default=None)
    largest = f"; the most measured: {best.architecture} {best.mean:,.0f}" if best else ""
    return (
        f"no measured architecture covers {advice.required:,.0f} supported users "
        f"({advice.options.users:,} + {advice.options.headroom:g} % headroom){largest}"
    )
