"""`mmload campaign report`: the publishable table of a campaign, from its finished runs.

Architecture x version: supported users over the repeats as `mmload ceiling` computes them
(``report.ceiling.ceiling_rows`` over the same records), each run, the spread, and the verdict
against the previous version (the one before it in the campaign file) as `mmload compare`
judges supported users (``report.compare.users_verdict``: the noise band and Welch's t-test).
Comparison runs at fixed users: per architecture and version, `mmload compare`'s endpoint
changes against the previous version (``report.compare.compare``). One view, written as
Markdown, HTML (Jinja2) and JSON by the reporter's formats.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmload.campaign.plan import Plan
from mmload.campaign.run import run_key
from mmload.campaign.state import DONE
from mmload.config.report import ReportOptions
from mmload.report.ceiling import ceiling_rows
from mmload.report.compare import compare, users_verdict
from mmload.report.sources import load_runs
from mmload.report.values import MISSING, fmt
from mmload.report.views import Section, Table, Text, View

SCHEMA = "mmload.campaign-report/1"
HEADERS = [
    "architecture",
    "version",
    "runs",
    "mean",
    "min",
    "max",
    "stdev",
    "spread",
    "vs previous version",
    "verdict",
    "each run (supported users)",
]


def finished(plan: Plan, data: dict[str, Any], kind: str) -> dict[tuple[str, str, str], list[Path]]:
    """(architecture, version, scenario) -> the records of its finished runs of ``kind``."""
    out: dict[tuple[str, str, str], list[Path]] = {}
    for run in plan.runs:
        entry = data["runs"].get(run_key(run))
        if entry and entry["status"] == DONE and run.test.kind == kind and entry["record"]:
            group = (run.architecture, run.version, run.test.name)
            out.setdefault(group, []).append(plan.output_dir / entry["record"])
    return out


def ceiling_table(plan: Plan, data: dict[str, Any], opt: ReportOptions) -> tuple[list, list]:
    """`mmload ceiling`'s rows over the finished ceiling runs, in the campaign's order, each
    with its verdict against the previous version of the same architecture."""
    records = [p for paths in finished(plan, data, "ceiling").values() for p in paths]
    if not records:
        return [], []
    rows, skipped = ceiling_rows(load_runs(records, detail="head"))
    by = {(r["architecture"], r["label"]): r for r in rows}
    ordered = []
    for arch in plan.campaign.architectures:
        before = None
        for version in plan.campaign.versions:
            row = by.get((arch.label, version.label))
            if row is None:
                continue
            row["version"] = version.label
            stdev, mean = row["stdev"], row["mean"]
            row["spread_pct"] = stdev / mean * 100 if stdev is not None and mean else None
            row["previous_label"] = before["label"] if before else None
            row["delta_pct_vs_previous"] = None
            row["verdict"] = None
            if before is not None:
                row["verdict"] = users_verdict(before["values"], row["values"], opt)
                row["delta_pct_vs_previous"] = row["verdict"]["delta_pct"]
            ordered.append(row)
            before = row
    return ordered, skipped


def comparisons(plan: Plan, data: dict[str, Any], opt: ReportOptions) -> list[dict[str, Any]]:
    """Each comparison scenario's finished runs per architecture and version, compared with
    the previous version's as `mmload compare` does."""
    groups = finished(plan, data, "comparison")
    out = []
    for arch in plan.campaign.architectures:
        for test in [t for t in plan.tests if t.kind == "comparison"]:
            before = None
            for version in plan.campaign.versions:
                paths = groups.get((arch.label, version.label, test.name))
                if not paths:
                    continue
                runs = load_runs(paths)
                item: dict[str, Any] = {
                    "architecture": arch.label,
                    "version": version.label,
                    "scenario": test.name,
                    "users": test.users,
                    "runs": len(runs),
                    "verdicts": {v: [r.verdict for r in runs].count(v) for v in ("PASS", "FAIL")},
                    "records": [str(p) for p in paths],
                    "previous_version": before[0] if before else None,
                    "worsened": None,
                    "improved": None,
                }
                if before is not None:
                    c = compare(before[1], runs, opt)
                    item["worsened"] = int((c.rows["change"] == "worsened").sum())
                    item["improved"] = int((c.rows["change"] == "improved").sum())
                out.append(item)
                before = (version.label, runs)
    return out


def progress(plan: Plan, data: dict[str, Any]) -> dict[str, int]:
    """How many runs are in each status."""
    counts: dict[str, int] = {}
    for run in plan.runs:
        status = data["runs"].get(run_key(run), {}).get("status", "pending")
        counts[status] = counts.get(status, 0) + 1
    return counts


def build_view(plan: Plan, data: dict[str, Any]) -> View:
    """The campaign's table, comparisons and runs as one report view."""
    opt = ReportOptions()
    rows, skipped = ceiling_table(plan, data, opt)
    comps = comparisons(plan, data, opt)
    counts = progress(plan, data)
    complete = counts.get(DONE, 0) == len(plan.runs)
    document = {
        "schema": SCHEMA,
        "campaign": plan.campaign.name,
        "source": plan.source,
        "complete": complete,
        "progress": counts,
        "versions": [v.label for v in plan.campaign.versions],
        "architectures": [a.label for a in plan.campaign.architectures],
        "noise_pct": opt.noise_pct,
        "alpha": opt.alpha,
        "rows": rows,
        "comparisons": comps,
        "skipped": skipped,
        "runs": [{"key": run_key(r), **data["runs"].get(run_key(r), {})} for r in plan.runs],
    }
    sections = [Section(None, [Text(summary_text(plan, counts, complete, opt))])]
    sections.append(Section("Supported users", [Table(HEADERS, table_rows(rows), "llrrrrrrrll")]))
    sections.append(matrix(plan, rows))
    if comps:
        sections.append(comparison_section(comps))
    sections.append(runs_section(plan, data))
    return View(
        stem="campaign",
        title=f"Campaign {plan.campaign.name}",
        document=document,
        sections=sections,
    )


def summary_text(plan: Plan, counts: dict[str, int], complete: bool, opt: ReportOptions) -> str:
    """What the table is made of."""
    c = plan.campaign
    state = (
        "complete"
        if complete
        else (f"not complete: {counts.get(DONE, 0)} of {len(plan.runs)} runs finished")
    )
    return (
        f"{len(c.versions)} version(s) x {len(c.architectures)} architecture(s) x "
        f"{len(plan.tests)} scenario(s) x {c.repeats} repeat(s) ({state}). Supported users as "
        f"`mmload ceiling` computes them from the finished runs' records; the verdict against the "
        f"previous version as `mmload compare` judges them (±{opt.noise_pct:g} % noise band, "
        f"Welch's t-test at alpha {opt.alpha:g} with at least 2 runs a side)."
    )


def table_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """One line per architecture and version."""
    return [
        [
            r["architecture"],
            r["version"],
            r["runs"],
            fmt(r["mean"], 1),
            fmt(r["min"], 0),
            fmt(r["max"], 0),
            fmt(r["stdev"], 1),
            MISSING if r["spread_pct"] is None else f"{r['spread_pct']:.1f} %",
            MISSING
            if r["verdict"] is None
            else f"{r['verdict']['delta_pct']:+.2f} % vs {r['previous_label']}",
            MISSING
            if r["verdict"] is None
            else f"{r['verdict']['verdict']} ({r['verdict']['reason']})",
            ", ".join(f"{v:,.0f}" for v in r["values"]),
        ]
        for r in rows
    ]


def matrix(plan: Plan, rows: list[dict[str, Any]]) -> Section:
    """Architecture x version: the mean supported users."""
    labels = [v.label for v in plan.campaign.versions]
    cell = {(r["architecture"], r["version"]): r["mean"] for r in rows}
    body = [
        [a.label, *[fmt(cell.get((a.label, v)), 1) for v in labels]]
        for a in plan.campaign.architectures
    ]
    return Section(
        "Mean supported users (architecture x version)", [Table(["architecture", *labels], body)]
    )


def comparison_section(comps: list[dict[str, Any]]) -> Section:
    """The comparison runs at fixed users."""
    body = [
        [
            c["architecture"],
            c["scenario"],
            fmt(c["users"], 0),
            c["version"],
            c["runs"],
            f"{c['verdicts']['PASS']} pass, {c['verdicts']['FAIL']} fail",
            MISSING
            if c["previous_version"] is None
            else f"{c['worsened']} worsened, {c['improved']} improved vs {c['previous_version']}",
        ]
        for c in comps
    ]
    headers = ["architecture", "scenario", "users", "version", "runs", "SLOs", "endpoints"]
    return Section("Comparison runs at fixed users", [Table(headers, body, "llrlrll")])


def runs_section(plan: Plan, data: dict[str, Any]) -> Section:
    """Every run: its status, supported users and record."""
    body = []
    for r in plan.runs:
        e = data["runs"].get(run_key(r), {})
        body.append(
            [
                run_key(r),
                e.get("status", "pending"),
                fmt(e.get("supported_users"), 0),
                e.get("record") or MISSING,
            ]
        )
    return Section("Runs", [Table(["run", "status", "supported users", "record"], body, "llrl")])
