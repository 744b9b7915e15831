"""The ceiling view: supported users per architecture and label over repeats, and the trend."""

from __future__ import annotations

from typing import Any

from mmload.report import plots
from mmload.report.ceiling import trend_table
from mmload.report.values import MISSING, fmt
from mmload.report.views import Check, Figure, Section, Table, Text, View

HEADERS = [
    "architecture",
    "label",
    "runs",
    "mean",
    "min",
    "max",
    "stdev",
    "vs previous label",
    "runs (supported users)",
]


def rows_of(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """One table row per (architecture, label)."""
    return [
        [
            r["architecture"],
            r["label"],
            r["runs"],
            fmt(r["mean"], 1),
            fmt(r["min"], 0),
            fmt(r["max"], 0),
            fmt(r["stdev"], 1),
            MISSING
            if r["delta_pct_vs_previous"] is None
            else f"{r['delta_pct_vs_previous']:+.2f} %",
            ", ".join(f"{n}: {v:,.0f}" for n, v in zip(r["run_names"], r["values"], strict=True)),
        ]
        for r in rows
    ]


def view(rows: list[dict[str, Any]], skipped: list[str]) -> View:
    """The ceiling table, the trend matrix and a bar chart of the means (min..max)."""
    table = Section(None, [Table(HEADERS, rows_of(rows), "llrrrrrrl")])
    table.blocks.append(
        Figure(
            "supported-users", "Supported users (mean, min..max)", lambda: plots.ceiling_bars(rows)
        )
    )
    sections = [table]
    labels, matrix = trend_table(rows)
    if len(labels) > 1:
        body = [[a, *[fmt(v, 0) for v in vs]] for a, *vs in matrix]
        sections.append(
            Section(
                "Trend across labels (mean supported users)",
                [Table(["architecture", *labels], body)],
            )
        )
    if skipped:
        sections.append(Section("Skipped", [Text(f"skipped {s}", note=True) for s in skipped]))
    checks = [
        Check(
            f"{r['architecture']}@{r['label']}",
            True,
            f"mean supported users {r['mean']:.1f} over {r['runs']} runs",
        )
        for r in rows
    ]
    return View(
        stem="ceiling",
        title="mmload ceiling: supported users",
        document=rows,
        sections=sections,
        checks=checks,
        suite="mmload.ceiling",
    )
