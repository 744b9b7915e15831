"""The compare view: two sides (runs or repeats), supported users and per-endpoint changes."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mmload.report import plots
from mmload.report.compare import Comparison, changed
from mmload.report.model import RunSummary
from mmload.report.values import MISSING, fmt, go_duration, pct, records
from mmload.report.views import Figure, Section, Table, Text, View

KIND_TITLE = {"store": "Store times", "api": "API times"}
CHANGE_HEADERS = ["", "", "Base", "Actual", "Delta", "Delta %"]
USERS_HEADERS = ["", "mean", "min", "max", "stdev", "runs"]


def side_desc(runs: list[RunSummary]) -> dict[str, Any]:
    """The identity of one side of a comparison."""
    return {
        "runs": [r.identity() for r in runs],
        "architecture": sorted({str(r.architecture) for r in runs}),
        "label": sorted({str(r.label) for r in runs}),
    }


def document(c: Comparison) -> dict[str, Any]:
    """The JSON document (schema mmload.compare/1)."""
    return {
        "schema": "mmload.compare/1",
        "base": side_desc(c.base),
        "new": side_desc(c.new),
        "supported_users": c.users,
        "sides": c.sides,
        "pooling": c.pooling,
        "thresholds": {
            "min_delta_pct": c.options.min_delta_pct,
            "min_delta_ms": c.options.min_delta_ms,
            "noise_pct": c.options.noise_pct,
            "min_samples": c.options.min_samples,
        },
        "warnings": c.warnings,
        "rows": records(c.rows),
    }


def side_name(runs: list[RunSummary]) -> str:
    """``10.11 on 2xl (3 runs)``."""
    labels = sorted({str(r.label) for r in runs if r.label}) or [runs[0].name]
    archs = sorted({str(r.architecture) for r in runs if r.architecture})
    on = f" on {'/'.join(archs)}" if archs else ""
    return f"{'/'.join(labels)}{on} ({len(runs)} run{'s' if len(runs) != 1 else ''})"


def users_rows(u: dict[str, Any]) -> list[list[Any]]:
    """Supported users: base, new and their spread."""

    def side(s: dict[str, Any]) -> list[Any]:
        return [
            fmt(s["mean"], 1),
            fmt(s["min"], 0),
            fmt(s["max"], 0),
            fmt(s["stdev"], 1),
            s["runs"],
        ]

    return [["base", *side(u["base"])], ["new", *side(u["new"])]]


def change_sections(c: Comparison) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) of the worsened/improved tables, in ltctl's order (store first, then API)."""
    kinds = set(c.rows["kind"])
    return [
        (f"{KIND_TITLE[kind]} {stat} ({change})", changed(c.rows, kind, stat, change))
        for kind in ("store", "api")
        if kind in kinds
        for change in ("worsened", "improved")
        for stat in ("avg", "p99")
    ]


def change_rows(df: pd.DataFrame) -> list[list[Any]]:
    """ltctl-style rows: name, stat, base, new, delta (Go durations), delta % (2 decimals)."""
    return [
        [
            r.name,
            r.stat,
            go_duration(r.base),
            go_duration(r.new),
            go_duration(round(r.new) - round(r.base)),  # as shown, like ltctl
            MISSING if r.delta_pct is None or pd.isna(r.delta_pct) else f"{r.delta_pct:.2f}",
        ]
        for r in df.itertuples()
    ]


def change_figure(c: Comparison, kind: str, stat: str, top: int = 15) -> Figure | None:
    """The largest worsened and improved changes of one kind and stat, as horizontal bars."""
    worse = changed(c.rows, kind, stat, "worsened").head(top)
    better = changed(c.rows, kind, stat, "improved").head(top)
    sel = pd.concat([worse, better]).dropna(subset=["delta_pct"])
    if sel.empty:
        return None
    title = f"{KIND_TITLE[kind]} {stat}: largest changes (delta %)"
    return Figure(f"changes-{kind}-{stat}", title, lambda: plots.change_bars(sel))


SIDE_HEADERS = ["", "runs", "requests", "error rate", "login success", "run verdicts", "SLOs"]


def _slo_cell(slos: dict[str, dict[str, int]]) -> str:
    if not slos:
        return MISSING
    parts = []
    for name, n in sorted(slos.items()):
        total = sum(n.values())
        bad = [f"{n[k]} {k}" for k in ("fail", "unmeasured") if n[k]]
        parts.append(f"{name}: {n['pass']}/{total} pass" + (f" ({', '.join(bad)})" if bad else ""))
    return "; ".join(parts)


def side_rows(c: Comparison) -> list[list[Any]]:
    """Per side: runs, requests, error rate, login success, verdicts and SLOs."""
    rows = []
    for side in ("base", "new"):
        s = c.sides[side]
        verdicts = ", ".join(f"{k} {v}" for k, v in s["verdicts"].items()) or MISSING
        rows.append(
            [
                side,
                s["runs"],
                fmt(s["requests"]),
                pct(s["error_rate"]),
                pct(s["login_success"]),
                verdicts,
                _slo_cell(s["slos"]),
            ]
        )
    return rows


def few_rows(c: Comparison) -> list[list[Any]]:
    """Endpoints left out of the change tables because a side has too few samples."""
    sel = c.rows[(c.rows["change"] == "few_samples") & (c.rows["stat"] == "p99")]
    return [
        [
            r.name,
            r.kind,
            fmt(r.base_count),
            fmt(r.new_count),
            go_duration(r.base),
            go_duration(r.new),
        ]
        for r in sel.itertuples()
    ]


def view(c: Comparison) -> View:
    """The comparison, tables laid out like `ltctl report compare`."""
    head = Section(None, [Text(f"base: {side_name(c.base)}"), Text(f"new: {side_name(c.new)}")])
    head.blocks += [Text(f"warning: {w}", note=True) for w in c.warnings]
    head.blocks.append(Table(SIDE_HEADERS, side_rows(c), "lrrrrll"))
    sections = [head]
    if c.users:
        u = c.users
        sign = "+" if (u["delta_pct"] or 0) >= 0 else ""
        sections.append(
            Section(
                "Supported users",
                [
                    Table(USERS_HEADERS, users_rows(u)),
                    Text(
                        f"Delta: {u['delta']:+,.1f} users ({sign}{fmt(u['delta_pct'], 2)} %). "
                        f"Verdict: {u['verdict']} — {u['reason']}. Method: {u['method']}."
                    ),
                ],
            )
        )
    figs = [
        f
        for kind in ("api", "store")
        for stat in ("avg", "p99")
        if (f := change_figure(c, kind, stat)) is not None
    ]
    if figs:
        sections.append(Section("Largest changes", list(figs), media="html"))
    o = c.options
    changes = Section(
        "Per endpoint",
        [
            Text(
                f"Changes under {o.min_delta_pct:g} % or under {o.min_delta_ms:g} ms are left out. "
                f"Base: {c.pooling['base']}; new: {c.pooling['new']}."
            )
        ],
    )
    sections.append(changes)
    for title, df in change_sections(c):
        table = Table(CHANGE_HEADERS, change_rows(df), "llrrrr")
        sections.append(Section(f"{title}:", [table], level=3))
    few = few_rows(c)
    if few:
        sections.append(
            Section(
                f"Too few samples to compare (under {o.min_samples:,} requests on a side)",
                [Table(["", "kind", "base count", "new count", "base p99", "new p99"], few)],
            )
        )
    only = c.rows[c.rows["change"].isin(["only_base", "only_new"]) & (c.rows["stat"] == "avg")]
    if len(only):
        rows = [[r.name, r.kind, r.change.replace("_", " ")] for r in only.itertuples()]
        sections.append(
            Section("Present on one side only", [Table(["", "kind", "side"], rows, "lll")])
        )
    return View(stem="compare", title="mmload compare", document=document(c), sections=sections)
