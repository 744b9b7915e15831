"""Ceiling tables: supported users per architecture and label over repeats, and the trend.

Each row: ``architecture``, ``label`` (build / ESR), ``runs``, ``mean``, ``min``, ``max``,
``stdev`` (sample, null for one run), the run names and values, and the change of the mean
against the previous label of the same architecture (labels in version order).
"""

from __future__ import annotations

import re
import statistics
from typing import Any

from mmload.errors import UserError
from mmload.report.model import RunSummary


def natural_key(text: str | None) -> tuple[Any, ...]:
    """Sort key that orders numbers numerically: 9.5 < 9.11 < 10.5; L < XL < 2XL < 4XL."""
    if text is None:
        return ((0, ""),)
    return tuple((1, int(p)) if p.isdigit() else (0, p) for p in re.split(r"(\d+)", text) if p)


_FAMILY = {"L": 0, "XL": 1, "2XL": 2, "4XL": 3, "8XL": 4}


def architecture_key(arch: str | None) -> tuple[Any, ...]:
    """Mattermost ceiling names (``ct<FAMILY><app><db><es>``) by family then size; else natural."""
    m = re.fullmatch(r"ct(\d*XL|L)(\d+)", arch or "")
    if m and m.group(1) in _FAMILY:
        return (0, _FAMILY[m.group(1)], m.group(2))
    return (1, *natural_key(arch))


def ceiling_rows(runs: list[RunSummary]) -> tuple[list[dict[str, Any]], list[str]]:
    """Group runs by (architecture, label) and summarise their supported users."""
    groups: dict[tuple[str | None, str | None], list[RunSummary]] = {}
    skipped = []
    for r in runs:
        if r.supported_users is None:
            skipped.append(f"{r.name}: no supported users ({r.source})")
            continue
        if r.outcome not in (None, "completed"):
            skipped.append(f"{r.name}: outcome {r.outcome}, not counted ({r.source})")
            continue
        groups.setdefault((r.architecture, r.label), []).append(r)
    if not groups:
        raise UserError(
            "no supported users in any run (ceiling runs record supported_users; "
            "ltng runs need results.txt)",
            source=", ".join(sorted({r.source for r in runs}))[:200] or None,
        )
    rows = []
    for (arch, label), members in groups.items():
        members.sort(key=lambda r: natural_key(r.name))
        values = [float(r.supported_users) for r in members if r.supported_users is not None]
        rows.append(
            {
                "architecture": arch,
                "label": label,
                "runs": len(values),
                "mean": statistics.fmean(values),
                "min": min(values),
                "max": max(values),
                "stdev": statistics.stdev(values) if len(values) > 1 else None,
                "run_names": [r.name for r in members],
                "values": values,
            }
        )
    rows.sort(key=lambda r: (architecture_key(r["architecture"]), natural_key(r["label"])))
    add_trend(rows)
    return rows, skipped


def add_trend(rows: list[dict[str, Any]]) -> None:
    """Per architecture, the change of the mean against the previous label (in place)."""
    prev: dict[str | None, dict[str, Any]] = {}
    for row in rows:
        before = prev.get(row["architecture"])
        row["previous_label"] = before["label"] if before else None
        if before and before["mean"]:
            row["delta_pct_vs_previous"] = (row["mean"] - before["mean"]) / before["mean"] * 100
        else:
            row["delta_pct_vs_previous"] = None
        prev[row["architecture"]] = row


def trend_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Architecture x label matrix of mean supported users (labels in version order)."""
    labels = sorted({r["label"] for r in rows}, key=natural_key)
    archs: list[str | None] = []
    for r in rows:
        if r["architecture"] not in archs:
            archs.append(r["architecture"])
    cell = {(r["architecture"], r["label"]): r["mean"] for r in rows}
    return [str(x) for x in labels], [[a, *[cell.get((a, lb)) for lb in labels]] for a in archs]
