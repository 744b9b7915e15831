"""The reporter's model of one run, whatever produced it (an mmload record or an ltng report).

A :class:`RunSummary` is what ``compare`` and ``ceiling`` need: identity (name, architecture,
build label), supported users, and a timings table with one row per (kind, name): ``kind`` is
``api`` (an HTTP endpoint / API handler) or ``store`` (a store method, ltng data only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from mmload.hdr import Sparse
from mmload.record import SloVerdict

# Columns of RunSummary.timings; count and sum_ms are null for ltng data (it only has avg/p99).
TIMING_COLUMNS = ["kind", "name", "avg_ms", "p99_ms", "count", "sum_ms"]

_REPEAT_SUFFIX = re.compile(r"[-_.]\d+$")


def architecture_from_name(name: str) -> str:
    """The run label without its trailing repeat number: ``ctXL220-1`` -> ``ctXL220``."""
    return _REPEAT_SUFFIX.sub("", name) or name


def empty_timings() -> pd.DataFrame:
    """A timings table with no rows and the right columns."""
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in TIMING_COLUMNS}).astype(
        {"kind": "object", "name": "object"}
    )


@dataclass
class RunSummary:
    """One run as compare and ceiling see it."""

    source: str  # the file or directory it was read from
    kind: str  # "mmload" or "ltng"
    name: str  # the run's own label (ltng `Label`, mmload run_id)
    architecture: str | None = None
    label: str | None = None  # build / ESR label, e.g. "9.5.7"
    supported_users: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str | None = None
    timings: pd.DataFrame = field(default_factory=empty_timings)
    # mmload records only: per endpoint name, the run's merged service-time histogram, so that
    # percentiles over several repeats come from the pooled histogram, not from averaging.
    histograms: dict[str, Sparse] = field(default_factory=dict)
    graphs: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # mmload records only (None for ltng data, which has none of these):
    requests: int | None = None
    errors: int | None = None
    arrivals: int | None = None  # login arrivals scheduled (Sev0 runs)
    logged_in: int | None = None  # of which logged in
    slos: list[SloVerdict] | None = None
    verdict: str | None = None  # PASS / FAIL / NO SLOS (record.run_verdict)

    @property
    def error_rate(self) -> float | None:
        """Failed requests / requests (None without request counts)."""
        return self.errors / self.requests if self.requests else None

    def identity(self) -> dict[str, Any]:
        """The JSON-friendly identity of the run (no tables)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "architecture": self.architecture,
            "label": self.label,
            "supported_users": self.supported_users,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "outcome": self.outcome,
            "warnings": list(self.warnings),
        }
