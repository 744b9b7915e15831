"""The run report's view: one run record as the banner, sections, figures, JSON and JUnit."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mmload import __version__
from mmload.report import plots
from mmload.report.runs import RunReport
from mmload.report.values import MISSING, fmt, pct, records
from mmload.report.views import Check, Figure, Section, Table, Text, View

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
SLO_HEADERS = ["SLO", "description", "target", "measured", "source", "verdict"]
ERROR_HEADERS = ["endpoint", "status", "error", "count"]
WINDOW_HEADERS = [
    "time (UTC)",
    "requests",
    "req/s",
    "errors",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "active users",
]


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


def document(rep: RunReport) -> dict[str, Any]:
    """The JSON document (schema mmload.report/1)."""
    return {
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


def slo_title(slos: list[dict[str, Any]]) -> str:
    """The SLO section's heading with its counts."""
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
    """The run's key facts as label/value rows."""
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


def figures(rep: RunReport, top: int) -> list[Figure]:
    """The run report's plots, in page order (those without data left out)."""
    w = rep.windows
    out = [
        Figure("latency", "Latency percentiles over time", lambda: plots.latency_over_time(w)),
        Figure("throughput", "Throughput and errors", lambda: plots.throughput_and_errors(w)),
    ]
    if "active_users" in w and not w["active_users"].isna().all():
        out.append(Figure("active-users", "Active users", lambda: plots.active_users(w)))
    aw = rep.arrival_windows
    if aw is not None and not aw.empty:
        out.append(
            Figure(
                "arrivals",
                "Login arrivals against the schedule (cumulative)",
                lambda: plots.arrivals_vs_schedule(aw),
            )
        )
    if not rep.endpoint_windows.empty:
        out.append(
            Figure(
                "endpoint-p99",
                "p99 over time of the busiest endpoints",
                lambda: plots.endpoint_p99(rep.endpoint_windows, rep.endpoints, top),
            )
        )
    return out


def checks(rep: RunReport) -> list[Check]:
    """One JUnit case per SLO, plus the run's outcome."""
    outcome = rep.meta.get("outcome")
    out = [Check("run.outcome", outcome == "completed", f"outcome is {outcome!r}")]
    for s in rep.slos:
        msg = f"{s.get('name')}: measured {s.get('value')} {s.get('op')} {s.get('threshold')}"
        out.append(Check(f"slo.{s.get('name')}", s.get("passed"), msg))
    return out


def view(rep: RunReport, top: int = 8) -> View:
    """The run report."""
    f = run_facts(rep)
    head = Section(None, [Table(["", ""], fact_rows(f), kv=True)])
    head.blocks += [Text(n, note=True) for n in rep.notes]
    sections = [head]
    slos = Section(slo_title(rep.slos))
    if rep.slos:
        slos.blocks.append(Table(SLO_HEADERS, slo_rows(rep.slos), "llllll", kv=True))
    sections.append(slos)
    if rep.sev0:
        sections.append(
            Section("Sev0 login storm", [Table(["", ""], sev0_rows(rep.sev0), kv=True)])
        )
    sections.append(Section("Plots", list(figures(rep, top)), media="html"))
    sections.append(
        Section(
            "Endpoints",
            [
                Text("Percentiles from the merged HDR histograms (service time).", media="md"),
                Table(ENDPOINT_HEADERS, endpoint_rows(rep.endpoints)),
            ],
        )
    )
    errors = (
        Table(ERROR_HEADERS, error_rows(rep.errors), "lrlr")
        if len(rep.errors)
        else Text("No errors.")
    )
    sections.append(Section("Errors by kind", [errors]))
    sections.append(
        Section(
            "Over time (10 s windows)",
            [Table(WINDOW_HEADERS, window_rows(rep.windows))],
            media="md",
        )
    )
    name = str(rep.meta.get("run_id") or rep.run_dir)
    return View(
        stem="report",
        title=f"mmload report: {name}",
        document=document(rep),
        sections=sections,
        checks=checks(rep),
        suite=f"mmload.slo.{name}",
    )
