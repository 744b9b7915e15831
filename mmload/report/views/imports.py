"""The ltng import view: Mattermost load-test-ng reports in the reporter's model."""

from __future__ import annotations

from typing import Any

from mmload.report import plots
from mmload.report.model import RunSummary
from mmload.report.values import clean, fmt, go_duration, records
from mmload.report.views import Figure, Section, Table, Text, View

KIND_TITLE = {"store": "Store times", "api": "API times"}
SUMMARY_HEADERS = [
    "run",
    "architecture",
    "label",
    "supported users",
    "start (UTC)",
    "end (UTC)",
    "API handlers",
    "store methods",
]


def document(runs: list[RunSummary]) -> list[dict[str, Any]]:
    """Each imported report's identity and timings."""
    return [
        {**r.identity(), "timings": records(r.timings.drop(columns=["count", "sum_ms"]))}
        for r in runs
    ]


def summary_rows(runs: list[RunSummary]) -> list[list[Any]]:
    """One row per imported report."""
    return [
        [
            r.name,
            r.architecture,
            r.label,
            fmt(r.supported_users),
            clean(r.started_at),
            clean(r.ended_at),
            int((r.timings["kind"] == "api").sum()),
            int((r.timings["kind"] == "store").sum()),
        ]
        for r in runs
    ]


def run_section(r: RunSummary) -> Section:
    """One report: its warnings, API and store times, and (HTML) its time series."""
    sec = Section(r.name, [Text(w, note=True) for w in r.warnings])
    for kind in ("api", "store"):
        t = r.timings[r.timings["kind"] == kind]
        if len(t):
            rows = [[x.name, go_duration(x.avg_ms), go_duration(x.p99_ms)] for x in t.itertuples()]
            sec.blocks += [Text(f"{KIND_TITLE[kind]}:"), Table(["name", "avg", "p99"], rows)]
    for i, g in enumerate(r.graphs):
        sec.blocks.append(
            Figure(
                f"{r.name}-graph-{i}",
                f"{r.name}: {g.get('Name', '')}",
                lambda g=g: plots.ltng_graph(g),
            )
        )
    return sec


def view(runs: list[RunSummary]) -> View:
    """A summary of the imported reports, then each report's API and store times."""
    sections = [Section(None, [Table(SUMMARY_HEADERS, summary_rows(runs), "lllrllrr")])]
    sections += [run_section(r) for r in runs]
    return View(
        stem="ltng-import",
        title="Imported ltng reports",
        document=document(runs),
        sections=sections,
    )
