"""Render reports as Markdown, JSON, JUnit XML and self-contained HTML (strings, no I/O)."""

from __future__ import annotations

import html
import json
import math
from datetime import date, datetime
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import pandas as pd

from mmload import __version__
from mmload.report.ceiling import CEILING_KEYS, trend_table
from mmload.report.compare import Comparison, changed
from mmload.report.model import RunSummary
from mmload.report.runs import RunReport

# ---------------------------------------------------------------- value formatting

MISSING = "\N{EN DASH}"  # an empty cell


def clean(value: Any) -> Any:
    """A JSON-safe value: NaN/inf -> None, numpy -> Python, times -> ISO-8601."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NaT or value is None:
        return None
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat().replace("+00:00", "Z")
    return value


def records(df: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    """A data frame as a list of JSON-safe row objects."""
    if df is None:
        return None
    return [clean(r) for r in df.astype(object).where(df.notna(), None).to_dict("records")]


def to_json(doc: Any) -> str:
    """Stable, indented JSON."""
    return json.dumps(clean(doc), indent=2, ensure_ascii=False) + "\n"


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell: numbers with fixed decimals, empty for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        v = float(value)
        if v != 0 and abs(v) < 10 ** (1 - digits) * 5:  # too small for the fixed decimals
            return f"{v:.3g}"
        return f"{v:,.{digits}f}"
    return str(value)


def pct(value: Any, digits: int = 2) -> str:
    """A ratio as a percentage."""
    return (
        MISSING
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{100 * float(value):.{digits}f} %")
    )


def go_duration(ms: float | None) -> str:
    """Milliseconds rounded to whole ms and written like Go's time.Duration (as ltctl does)."""
    if ms is None or (isinstance(ms, float) and math.isnan(ms)):
        return MISSING
    total = round(ms)
    if total == 0:
        return "0s"
    sign, total = ("-" if total < 0 else ""), abs(total)
    if total < 1000:
        return f"{sign}{total}ms"
    minutes, rest_ms = divmod(total, 60_000)
    hours, minutes = divmod(minutes, 60)
    secs = f"{rest_ms / 1000:.3f}".rstrip("0").rstrip(".")
    head = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return f"{sign}{head}{secs}s"


def md_table(headers: list[str], rows: list[list[Any]], align: str | None = None) -> str:
    """A Markdown table; cells are escaped for pipes."""

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    align = align or "l" + "r" * (len(headers) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- run report


def run_facts(rep: RunReport) -> dict[str, Any]:
    """The run's identity and totals."""
    m = rep.meta
    scenario = m.get("scenario")
    sc = scenario if isinstance(scenario, dict) else {"name": scenario}
    ep = rep.endpoints
    total = int(ep["count"].sum())
    errors = int(ep["errors"].sum())
    return {
        "run_id": m.get("run_id"),
        "scenario": sc.get("name"),
        "scenario_kind": sc.get("kind"),
        "outcome": m.get("outcome"),
        "label": m.get("label"),
        "architecture": m.get("architecture"),
        "server_version": m.get("server_version"),
        "target": m.get("target"),
        "started_at": m.get("started_at"),
        "ended_at": m.get("ended_at"),
        "duration_s": rep.duration_s,
        "parameters": m.get("parameters"),
        "supported_users": m.get("supported_users"),
        "requests": total,
        "errors": errors,
        "error_rate": errors / total if total else 0.0,
        "rps": total / rep.duration_s if rep.duration_s else None,
        "tool_version": m.get("tool_version"),
    }


def slo_counts(slos: list[dict[str, Any]]) -> dict[str, int]:
    """How many SLOs passed, failed, or could not be measured."""
    passed = sum(1 for s in slos if s.get("passed") is True)
    failed = sum(1 for s in slos if s.get("passed") is False)
    return {"passed": passed, "failed": failed, "unmeasured": len(slos) - passed - failed}


def run_json(rep: RunReport) -> str:
    """The run report as JSON (schema mmload.report/1)."""
    return to_json(
        {
            "schema": "mmload.report/1",
            "generated_by": f"mmload {__version__}",
            "run": run_facts(rep),
            "notes": rep.notes,
            "slos": rep.slos,
            "slo_summary": slo_counts(rep.slos),
            "endpoints": records(rep.endpoints),
            "errors": records(rep.errors),
            "sev0": rep.sev0,
            "windows": records(rep.windows),
            "arrival_windows": records(rep.arrival_windows),
            "endpoint_windows": records(rep.endpoint_windows),
        }
    )


ENDPOINT_HEADERS = [
    "endpoint",
    "count",
    "errors",
    "error rate",
    "req/s",
    "mean ms",
    "p50 ms",
    "p90 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
]


def endpoint_rows(ep: pd.DataFrame) -> list[list[Any]]:
    """Endpoint table rows, busiest first."""
    ep = ep.sort_values(["count", "name"], ascending=[False, True])
    return [
        [
            r.name,
            fmt(r.count),
            fmt(r.errors),
            pct(r.error_rate),
            fmt(r.rps, 2),
            fmt(r.mean_ms),
            fmt(r.p50_ms),
            fmt(r.p90_ms),
            fmt(r.p95_ms),
            fmt(r.p99_ms),
            fmt(r.max_ms),
        ]
        for r in ep.itertuples()
    ]


SLO_HEADERS = ["SLO", "description", "target", "measured", "source", "verdict"]


def slo_title(slos: list[dict[str, Any]]) -> str:
    """The SLO section's heading with its counts, shared by md and HTML."""
    c = slo_counts(slos)
    return (
        f"SLO verdicts: {c['passed']} passed, {c['failed']} failed, {c['unmeasured']} not measured"
    )


def slo_rows(slos: list[dict[str, Any]]) -> list[list[Any]]:
    """SLO table rows."""
    verdict = {True: "PASS", False: "FAIL", None: "not measured"}
    return [
        [
            s.get("name"),
            s.get("description") or "",
            f"{s.get('op', '')} {fmt(s.get('threshold'), 2)}",
            fmt(s.get("value"), 2),
            s.get("source") or "",
            verdict.get(s.get("passed"), "?"),
        ]
        for s in slos
    ]


def sev0_rows(s: dict[str, Any]) -> list[list[Any]]:
    """Sev0 login-storm facts as (what, value) rows."""
    return [
        ["arrivals scheduled", fmt(s["arrivals"])],
        ["schedule", f"{s['scheduled_first']} → {s['scheduled_last']}"],
        [
            "started / logged in / fully loaded",
            f"{s['started']:,} / {s['logged_in']:,} / {s['loaded']:,}",
        ],
        ["login success", pct(s["login_success"])],
        ["WebSocket connect success (of logged-in users)", pct(s["ws_connect_success"])],
        [
            "start lag behind schedule p50 / p95 / p99 / max (ms)",
            " / ".join(fmt(s[f"lag_ms_{k}"]) for k in ("p50", "p95", "p99", "max")),
        ],
        [
            "arrival → logged in p50 / p95 / p99 / max (ms)",
            " / ".join(fmt(s[f"to_login_ms_{k}"]) for k in ("p50", "p95", "p99", "max")),
        ],
        [
            "arrival → fully loaded p50 / p95 / p99 / max (ms)",
            " / ".join(fmt(s[f"to_loaded_ms_{k}"]) for k in ("p50", "p95", "p99", "max")),
        ],
        ["login requests / answered 429", f"{s['login_requests']:,} / {s['login_429']:,}"],
        ["all 429 responses", fmt(s["status_429"])],
        ["outcomes", ", ".join(f"{k}: {v:,}" for k, v in sorted(s["outcomes"].items()))],
    ]


def error_rows(errors: pd.DataFrame, limit: int = 25) -> list[list[Any]]:
    """Errors by kind, most frequent first."""
    return [[r.name, int(r.status), r.error, fmt(r.count)] for r in errors.head(limit).itertuples()]


def window_rows(w: pd.DataFrame) -> list[list[Any]]:
    """One row per 10 s window."""
    has_users = "active_users" in w
    return [
        [
            r.time.strftime("%H:%M:%S"),
            fmt(r.count),
            fmt(r.rps, 1),
            fmt(r.errors),
            fmt(r.p50_ms),
            fmt(r.p95_ms),
            fmt(r.p99_ms),
            fmt(getattr(r, "active_users", None)) if has_users else MISSING,
        ]
        for r in w.itertuples()
    ]


def fact_rows(f: dict[str, Any]) -> list[list[str]]:
    """The run's key facts (from ``run_facts``) as label/value rows, shared by md and HTML."""
    facts = [
        ["scenario", f"{f['scenario']} ({f['scenario_kind']})"],
        ["outcome", f["outcome"]],
        ["target", f["target"]],
        ["server version", f["server_version"]],
        ["label / architecture", f"{fmt(f['label'])} / {fmt(f['architecture'])}"],
        ["window (UTC)", f"{f['started_at']} → {f['ended_at']} ({fmt(f['duration_s'])} s)"],
        ["requests / errors", f"{f['requests']:,} / {f['errors']:,} ({pct(f['error_rate'])})"],
        ["throughput", f"{fmt(f['rps'], 1)} req/s"],
    ]
    if f["supported_users"] is not None:
        facts.append(["supported users", fmt(f["supported_users"])])
    return facts


def run_markdown(rep: RunReport) -> str:
    """The run report as Markdown."""
    f = run_facts(rep)
    out = [f"# mmload report: {f['run_id'] or rep.run_dir}\n\n"]
    out.append(md_table(["", ""], fact_rows(f), "ll"))
    out += [f"\n> {n}\n" for n in rep.notes]
    out.append(f"\n## {slo_title(rep.slos)}\n\n")
    if rep.slos:
        out.append(md_table(SLO_HEADERS, slo_rows(rep.slos), "llllll"))
    out.append("\n## Endpoints\n\nPercentiles from the merged HDR histograms (service time).\n\n")
    out.append(md_table(ENDPOINT_HEADERS, endpoint_rows(rep.endpoints)))
    if rep.sev0:
        out.append("\n## Sev0 login storm\n\n")
        out.append(md_table(["", ""], sev0_rows(rep.sev0), "ll"))
    out.append("\n## Errors by kind\n\n")
    out.append(
        md_table(["endpoint", "status", "error", "count"], error_rows(rep.errors), "lrlr")
        if len(rep.errors)
        else "No errors.\n"
    )
    out.append("\n## Over time (10 s windows)\n\n")
    out.append(
        md_table(
            [
                "time (UTC)",
                "requests",
                "req/s",
                "errors",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "active users",
            ],
            window_rows(rep.windows),
        )
    )
    return "".join(out)


def run_junit(rep: RunReport) -> str:
    """One JUnit test case per SLO (plus the run outcome), so CI can gate on a run."""
    name = str(rep.meta.get("run_id") or rep.run_dir)
    suite = ET.Element("testsuite", name=f"mmload.slo.{name}")
    cases = [
        (
            "run.outcome",
            rep.meta.get("outcome") == "completed",
            f"outcome is {rep.meta.get('outcome')!r}",
        )
    ]
    for s in rep.slos:
        msg = f"{s.get('name')}: measured {s.get('value')} {s.get('op')} {s.get('threshold')}"
        cases.append((f"slo.{s.get('name')}", s.get("passed"), msg))
    failures = skipped = 0
    for case_name, passed, msg in cases:
        tc = ET.SubElement(suite, "testcase", classname=f"mmload.{name}", name=case_name, time="0")
        if passed is False:
            failures += 1
            ET.SubElement(tc, "failure", message=msg, type="SLOViolation").text = msg
        elif passed is None:
            skipped += 1
            ET.SubElement(tc, "skipped", message=f"not measured: {msg}")
        ET.SubElement(tc, "system-out").text = msg
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    root = ET.Element("testsuites", name="mmload", tests=str(len(cases)), failures=str(failures))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------- HTML

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1b1d21}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}
td:first-child,th:first-child{text-align:left}
.pass{color:#137333;font-weight:600}.fail{color:#b3261e;font-weight:600}
.note{background:#fff4e5;padding:.5rem;border-left:4px solid #f29900}
.plot{min-height:340px}
table.kv td{text-align:left}
"""

# Records script errors on the page element, so a headless browser check can see them.
ERROR_HOOK = (
    "<script>window.__mmloadErrors=[];window.addEventListener('error',function(e){"
    "window.__mmloadErrors.push(String(e.message));"
    "document.documentElement.setAttribute('data-js-errors',window.__mmloadErrors.join(' | '));"
    "});</script>"
)
RENDER_MARK = (
    "<script>window.addEventListener('load',function(){var n=document.querySelectorAll("
    "'.js-plotly-plot .main-svg').length;document.documentElement.setAttribute("
    "'data-plots-rendered',String(document.querySelectorAll('.js-plotly-plot').length));"
    "document.documentElement.setAttribute('data-plot-svgs',String(n));});</script>"
)


def html_table(headers: list[str], rows: list[list[Any]], cls: str = "") -> str:
    """An HTML table with escaped cells; PASS/FAIL cells get a colour class."""

    def td(v: Any) -> str:
        cls = {"PASS": " class=pass", "FAIL": " class=fail"}.get(str(v), "")
        return f"<td{cls}>{html.escape(str(v))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(td(v) for v in r) + "</tr>" for r in rows)
    head_html = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    attr = f" class={cls}" if cls else ""
    return f"<table{attr}>{head_html}<tbody>{body}</tbody></table>"


def html_page(
    title: str, sections: list[str], figures: list[Any], after: list[str] | None = None
) -> str:
    """One self-contained page: sections, the plots, then ``after`` (detail tables).

    plotly.js is inlined once; every figure is rendered from its JSON by the page's script.
    """
    import plotly.io as pio  # plotly is imported only when HTML is asked for

    divs = []
    for i, fig in enumerate(figures):
        divs.append(
            pio.to_html(
                fig,
                full_html=False,
                include_plotlyjs=(i == 0),
                div_id=f"plot-{i}",
                config={"displaylogo": False},
            )
        )
    plots_html = "".join(f'<div class="plot">{d}</div>' for d in divs)
    plots_html = f"<h2>Plots</h2>{plots_html}" if divs else ""
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style>{ERROR_HOOK}</head><body>"
        f"<h1>{html.escape(title)}</h1>{''.join(sections)}"
        f"{plots_html}{''.join(after or [])}{RENDER_MARK}</body></html>\n"
    )


def run_html(rep: RunReport, top: int = 8) -> str:
    """The run report as one self-contained HTML file with plots."""
    from mmload.report import plots

    f = run_facts(rep)
    sections = [html_table(["", ""], fact_rows(f), "kv")]
    sections += [f"<p class=note>{html.escape(n)}</p>" for n in rep.notes]
    sections.append(f"<h2>{slo_title(rep.slos)}</h2>")
    if rep.slos:
        sections.append(html_table(SLO_HEADERS, slo_rows(rep.slos), "kv"))
    if rep.sev0:
        sections.append(
            "<h2>Sev0 login storm</h2>" + html_table(["", ""], sev0_rows(rep.sev0), "kv")
        )
    details = ["<h2>Endpoints</h2>" + html_table(ENDPOINT_HEADERS, endpoint_rows(rep.endpoints))]
    details.append(
        "<h2>Errors by kind</h2>"
        + (
            html_table(["endpoint", "status", "error", "count"], error_rows(rep.errors))
            if len(rep.errors)
            else "<p>No errors.</p>"
        )
    )
    title = f"mmload report: {f['run_id'] or rep.run_dir}"
    return html_page(title, sections, plots.run_figures(rep, top), details)


# ---------------------------------------------------------------- compare

KIND_TITLE = {"store": "Store times", "api": "API times"}


def side_desc(runs: list[RunSummary]) -> dict[str, Any]:
    """The identity of one side of a comparison."""
    return {
        "runs": [r.identity() for r in runs],
        "architecture": sorted({str(r.architecture) for r in runs}),
        "label": sorted({str(r.label) for r in runs}),
    }


def compare_json(c: Comparison) -> str:
    """The comparison as JSON: rows (kind, name, stat, base, new, delta, delta_pct in ms)."""
    return to_json(
        {
            "schema": "mmload.compare/1",
            "base": side_desc(c.base),
            "new": side_desc(c.new),
            "supported_users": c.users,
            "pooling": c.pooling,
            "thresholds": {
                "min_delta_pct": c.options.min_delta_pct,
                "min_delta_ms": c.options.min_delta_ms,
                "noise_pct": c.options.noise_pct,
            },
            "warnings": c.warnings,
            "rows": records(c.rows),
        }
    )


def _side_name(runs: list[RunSummary]) -> str:
    labels = sorted({str(r.label) for r in runs if r.label}) or [runs[0].name]
    archs = sorted({str(r.architecture) for r in runs if r.architecture})
    return (
        f"{'/'.join(labels)}"
        + (f" on {'/'.join(archs)}" if archs else "")
        + f" ({len(runs)} run"
        + ("s" if len(runs) != 1 else "")
        + ")"
    )


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


def compare_sections(c: Comparison) -> list[tuple[str, pd.DataFrame]]:
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


CHANGE_HEADERS = ["", "", "Base", "Actual", "Delta", "Delta %"]


def compare_markdown(c: Comparison) -> str:
    """The comparison as Markdown, tables laid out like `ltctl report compare`."""
    out = [f"# mmload compare\n\n- base: {_side_name(c.base)}\n- new: {_side_name(c.new)}\n"]
    out += [f"- warning: {w}\n" for w in c.warnings]
    if c.users:
        u = c.users
        out.append("\n## Supported users\n\n")
        out.append(md_table(["", "mean", "min", "max", "stdev", "runs"], users_rows(u)))
        sign = "+" if (u["delta_pct"] or 0) >= 0 else ""
        out.append(
            f"\nDelta: {u['delta']:+,.1f} users ({sign}{fmt(u['delta_pct'], 2)} %). "
            f"**Verdict: {u['verdict']}** — {u['reason']}. Method: {u['method']}.\n"
        )
    out.append(
        f"\nChanges under {c.options.min_delta_pct:g} % or under "
        f"{c.options.min_delta_ms:g} ms are left out. Base: {c.pooling['base']}; "
        f"new: {c.pooling['new']}.\n\n"
    )
    for title, df in compare_sections(c):
        out.append(f"### {title}:\n")
        out.append(md_table(CHANGE_HEADERS, change_rows(df), "llrrrr"))
    only = c.rows[c.rows["change"].isin(["only_base", "only_new"]) & (c.rows["stat"] == "avg")]
    if len(only):
        out.append("\n### Present on one side only\n\n")
        out.append(
            md_table(
                ["", "kind", "side"],
                [[r.name, r.kind, r.change.replace("_", " ")] for r in only.itertuples()],
                "lll",
            )
        )
    return "".join(out)


def compare_html(c: Comparison) -> str:
    """The comparison as a self-contained HTML page: verdict, change charts, ltctl tables."""
    sections = [
        f"<p>base: {html.escape(_side_name(c.base))}<br>new: {html.escape(_side_name(c.new))}</p>"
    ]
    sections += [f"<p class=note>{html.escape(w)}</p>" for w in c.warnings]
    if c.users:
        u = c.users
        sections.append(
            "<h2>Supported users</h2>"
            + html_table(["", "mean", "min", "max", "stdev", "runs"], users_rows(u))
        )
        sections.append(
            f"<p>Delta {u['delta']:+,.1f} ({fmt(u['delta_pct'], 2)} %): "
            f"<b>{html.escape(u['verdict'])}</b> — {html.escape(u['reason'])}. "
            f"Method: {html.escape(u['method'])}.</p>"
        )
    details = [
        f"<h2>{html.escape(title)}</h2>" + html_table(CHANGE_HEADERS, change_rows(df))
        for title, df in compare_sections(c)
    ]
    return html_page("mmload compare", sections, compare_figures(c), details)


def compare_figures(c: Comparison, top: int = 15) -> list[Any]:
    """Per kind and stat, the largest worsened and improved changes as horizontal bars."""
    import plotly.graph_objects as go

    from mmload.report import plots

    figs = []
    for kind in ("api", "store"):
        for stat in ("avg", "p99"):
            worse = changed(c.rows, kind, stat, "worsened").head(top)
            better = changed(c.rows, kind, stat, "improved").head(top)
            sel = pd.concat([worse, better]).dropna(subset=["delta_pct"])
            if sel.empty:
                continue
            fig = go.Figure(
                go.Bar(
                    x=sel["delta_pct"],
                    y=sel["name"],
                    orientation="h",
                    marker_color=["crimson" if d > 0 else "seagreen" for d in sel["delta"]],
                    hovertext=[
                        f"{go_duration(b)} → {go_duration(n)}"
                        for b, n in zip(sel["base"], sel["new"], strict=True)
                    ],
                )
            )
            fig.update_layout(
                title=f"{KIND_TITLE[kind]} {stat}: largest changes (delta %)",
                **{**plots.LAYOUT, "height": 200 + 22 * len(sel)},
            )
            fig.update_yaxes(autorange="reversed")
            figs.append(fig)
    return figs


# ---------------------------------------------------------------- ceiling


def ceiling_json(rows: list[dict[str, Any]]) -> str:
    """The ceiling table as a JSON list (architecture, label, runs, mean, min, max, stdev, …)."""
    return to_json(rows)


def ceiling_markdown(rows: list[dict[str, Any]], skipped: list[str]) -> str:
    """Supported users per architecture and label, and the trend across labels."""
    out = ["# mmload ceiling: supported users\n\n"]
    body = [
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
    out.append(
        md_table(
            [
                "architecture",
                "label",
                "runs",
                "mean",
                "min",
                "max",
                "stdev",
                "vs previous label",
                "runs (supported users)",
            ],
            body,
            "llrrrrrrl",
        )
    )
    labels, matrix = trend_table(rows)
    if len(labels) > 1:
        out.append("\n## Trend across labels (mean supported users)\n\n")
        out.append(
            md_table(
                ["architecture", *labels], [[a, *[fmt(v, 0) for v in vs]] for a, *vs in matrix]
            )
        )
    out += [f"\n> skipped {s}" for s in skipped]
    return "".join(out) + ("\n" if skipped else "")


def ceiling_html(rows: list[dict[str, Any]], skipped: list[str]) -> str:
    """The ceiling table as HTML with a bar chart of the means (error bars: min..max)."""
    import plotly.graph_objects as go

    from mmload.report import plots

    body = [
        [
            r["architecture"],
            r["label"],
            r["runs"],
            fmt(r["mean"], 1),
            fmt(r["min"], 0),
            fmt(r["max"], 0),
            fmt(r["stdev"], 1),
        ]
        for r in rows
    ]
    fig = go.Figure()
    for label in sorted({r["label"] for r in rows}, key=str):
        sel = [r for r in rows if r["label"] == label]
        fig.add_trace(
            go.Bar(
                x=[str(r["architecture"]) for r in sel],
                y=[r["mean"] for r in sel],
                name=str(label),
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [r["max"] - r["mean"] for r in sel],
                    "arrayminus": [r["mean"] - r["min"] for r in sel],
                },
            )
        )
    fig.update_layout(title="Supported users (mean, min..max)", barmode="group", **plots.LAYOUT)
    sections = [html_table(CEILING_KEYS, body)] + [
        f"<p class=note>skipped {html.escape(s)}</p>" for s in skipped
    ]
    return html_page("mmload ceiling: supported users", sections, [fig])


def ceiling_junit(rows: list[dict[str, Any]]) -> str:
    """Not meaningful for ceiling tables; kept for a uniform --format (one case per row)."""
    root = ET.Element("testsuites", name="mmload")
    suite = ET.SubElement(
        root,
        "testsuite",
        name="mmload.ceiling",
        tests=str(len(rows)),
        failures="0",
        errors="0",
        skipped="0",
    )
    for r in rows:
        tc = ET.SubElement(
            suite,
            "testcase",
            classname="mmload.ceiling",
            name=f"{r['architecture']}@{r['label']}",
            time="0",
        )
        ET.SubElement(
            tc, "system-out"
        ).text = f"mean supported users {r['mean']:.1f} over {r['runs']} runs"
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------- imported ltng runs


def imports_json(runs: list[RunSummary]) -> str:
    """Imported ltng reports in the reporter's model."""
    return to_json(
        [
            {**r.identity(), "timings": records(r.timings.drop(columns=["count", "sum_ms"]))}
            for r in runs
        ]
    )


def imports_markdown(runs: list[RunSummary]) -> str:
    """A summary of the imported reports, then each report's API and store times."""
    out = ["# Imported ltng reports\n\n"]
    out.append(
        md_table(
            [
                "run",
                "architecture",
                "label",
                "supported users",
                "start (UTC)",
                "end (UTC)",
                "API handlers",
                "store methods",
            ],
            [
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
            ],
            "lllrllrr",
        )
    )
    for r in runs:
        out.append(f"\n## {r.name}\n\n")
        out += [f"> {w}\n" for w in r.warnings]
        for kind in ("api", "store"):
            t = r.timings[r.timings["kind"] == kind]
            if len(t):
                out.append(f"\n### {KIND_TITLE[kind]}\n\n")
                out.append(
                    md_table(
                        ["name", "avg", "p99"],
                        [
                            [x.name, go_duration(x.avg_ms), go_duration(x.p99_ms)]
                            for x in t.itertuples()
                        ],
                    )
                )
    return "".join(out)


def imports_html(runs: list[RunSummary]) -> str:
    """Imported reports as HTML with their time series graphs."""
    from mmload.report import plots

    sections = [
        html_table(
            ["run", "architecture", "label", "supported users"],
            [[r.name, r.architecture, r.label, fmt(r.supported_users)] for r in runs],
        )
    ]
    figs = []
    for r in runs:
        t = r.timings
        sections.append(
            f"<h2>{html.escape(r.name)}</h2>"
            + html_table(
                ["kind", "name", "avg", "p99"],
                [
                    [x.kind, x.name, go_duration(x.avg_ms), go_duration(x.p99_ms)]
                    for x in t.itertuples()
                ],
            )
        )
        for g in r.graphs:
            fig = plots.ltng_graph(g)
            fig.update_layout(title=f"{r.name}: {g.get('Name', '')}")
            figs.append(fig)
    return html_page("Imported ltng reports", sections, figs)
