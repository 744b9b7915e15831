"""The run report's view: one run record as the banner, sections, figures, JSON and JUnit."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mmload import __version__, record
from mmload.report import plots
from mmload.report.runs import ERROR_CLASSES, RunReport
from mmload.report.values import MISSING, clean, fmt, pct, records
from mmload.report.views import Banner, Block, Check, Figure, Section, Table, Text, View

CLASS_TITLES = dict(ERROR_CLASSES.values())

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
    "429",
    "5xx",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "users connected",
]


def run_facts(rep: RunReport) -> dict[str, Any]:
    """The run's identity and totals."""
    run = rep.run
    ep = rep.endpoints
    total = int(ep["count"].sum())
    errors = int(ep["errors"].sum())
    return {
        "run_id": run.run_id,
        "scenario": run.scenario.name,
        "scenario_kind": run.scenario_kind,
        "outcome": run.outcome,
        "error": run.error,
        "abort": run.abort.sentence() if run.abort else None,
        "label": run.label,
        "architecture": run.architecture,
        "server_version": run.server_version,
        "licensed": run.licensed,
        "target": run.target,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "duration_s": rep.duration_s,
        "parameters": run.parameters,
        "supported_users": run.supported_users,
        "requests": total,
        "errors": errors,
        "error_rate": errors / total if total else 0.0,
        "rps": total / rep.duration_s if rep.duration_s else None,
        "tool_version": run.tool_version,
    }


def slo_counts(slos: list[dict[str, Any]]) -> dict[str, int]:
    """How many SLOs passed, failed, or could not be measured."""
    passed = sum(1 for s in slos if s.get("passed") is True and s.get("value") is not None)
    failed = sum(1 for s in slos if s.get("passed") is False and s.get("value") is not None)
    return {"passed": passed, "failed": failed, "unmeasured": len(slos) - passed - failed}


def document(rep: RunReport) -> dict[str, Any]:
    """The JSON document (schema mmload.report/1)."""
    v = rep.verdict
    ceiling = rep.run.ceiling
    return {
        "schema": "mmload.report/1",
        "generated_by": f"mmload {__version__}",
        "verdict": {"status": v.status, "reasons": v.reasons},
        "run": run_facts(rep),
        "notes": rep.notes,
        "slos": rep.slos,
        "slo_summary": slo_counts(rep.slos),
        "error_classes": rep.error_classes,
        "endpoints": records(rep.endpoints),
        "errors": records(rep.errors),
        "sev0": rep.sev0,
        "reconnects": rep.reconnects,
        "ceiling": ceiling.model_dump(mode="json") if ceiling else None,
        "prometheus": (
            {
                name: {"query": p.query, "series": len(p.result), "error": p.error}
                for name, p in rep.prometheus.panels.items()
            }
            if rep.prometheus
            else None
        ),
        "windows": records(rep.windows),
        "arrival_windows": records(rep.arrival_windows),
        "arrival_curve": records(rep.curve_windows),
        "reconnect_windows": records(rep.reconnect_windows),
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
    """SLO table rows (an SLO that could not be measured is never shown as a pass)."""
    verdict = {"pass": "PASS", "fail": "FAIL", "unmeasured": "not measured (not a pass)"}
    return [
        [
            s["name"],
            s.get("description") or "",
            f"{s.get('op', '')} {fmt(s.get('threshold'), 2)}",
            fmt(s.get("value"), 2),
            s.get("source") or "",
            verdict[record.SloVerdict.model_validate(s).status]
            + (" (optional)" if s.get("optional") else ""),
        ]
        for s in slos
    ]


def sev0_rows(s: dict[str, Any]) -> list[list[Any]]:
    """Sev0 login-storm facts as (what, value) rows."""
    return [
        ["arrivals scheduled", fmt(s["arrivals"])],
        [
            "schedule",
            f"{s['scheduled_first']} → {s['scheduled_last']}"
            if s["scheduled_first"]
            else "none (users added by the ceiling loop)",
        ],
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


CURVE_HEADERS = ["from (s)", "requested", "scheduled", "started", "started vs requested"]


def curve_section(rep: RunReport) -> Section | None:
    """The requested arrival curve against the scheduled and started arrivals, per window."""
    cw, curve = rep.curve_windows, rep.run.arrival_curve
    if cw is None or curve is None:
        return None
    worst = cw["started_off"].abs().max()
    text = (
        f"The {curve.curve} curve the scenario asked for, in {fmt(curve.window_s, 0)} s windows "
        f"from the schedule's start ({clean(curve.t0)}), and the arrivals the run scheduled "
        f"and started in each; the furthest window is {pct(worst, 1)} off the request."
    )
    rows = [
        [
            fmt(r.start_s, 0),
            f"{r.requested:,.1f}".removesuffix(".0"),
            fmt(r.scheduled),
            fmt(r.started),
            pct(r.started_off, 1),
        ]
        for r in cw.itertuples()
    ]
    return Section("Arrival curve: requested vs started", [Text(text), Table(CURVE_HEADERS, rows)])


def error_rows(errors: pd.DataFrame, limit: int = 25) -> list[list[Any]]:
    """Errors by kind, most frequent first."""
    return [[r.name, int(r.status), r.error, fmt(r.count)] for r in errors.head(limit).itertuples()]


def window_rows(w: pd.DataFrame) -> list[list[Any]]:
    """One row per 10 s window (users connected at the window's end)."""
    return [
        [
            r.time.strftime("%H:%M:%S"),
            fmt(r.count),
            fmt(r.rps, 1),
            fmt(r.errors),
            fmt(r.errors_rate_limited),
            fmt(r.errors_server),
            fmt(r.p50_ms),
            fmt(r.p95_ms),
            fmt(r.p99_ms),
            fmt(getattr(r, "connected_users", None)),
        ]
        for r in w.itertuples()
    ]


def banner(rep: RunReport) -> Banner:
    """PASS / FAIL / NO SLOS and why, from record.run_verdict (the engine's rule too)."""
    v = rep.verdict
    c = slo_counts(rep.slos)
    users = rep.run.supported_users
    tail = f"; supported users {users:,.0f}" if users is not None else ""
    if v.status == "PASS":
        head = f"every SLO passed ({c['passed']} of {len(rep.slos)}){tail}"
    elif v.status == "NO SLOS":
        head = f"no SLO was evaluated: nothing to pass or fail{tail}"
    else:
        parts = [f"{c['failed']} SLO{'s' if c['failed'] != 1 else ''} failed"]
        if c["unmeasured"]:
            parts.append(f"{c['unmeasured']} could not be measured")
        if rep.run.outcome != "completed":
            parts.append(f"the run is {rep.run.outcome}")
        head = ", ".join(parts) + tail
    return Banner(v.status, head, list(v.reasons))


def _secs(v: Any) -> str:
    return MISSING if v is None else f"{fmt(float(v), 0)} s"


def parameter_rows(rep: RunReport) -> list[list[str]]:
    """The test's parameters: what ran, how big, against what."""
    run, p = rep.run, rep.run.parameters
    f = run_facts(rep)
    users = p.get("users", run.spec("users"))
    window = p.get("arrival_s", run.spec("arrival_s"))
    rows = [
        ["scenario", f"{run.scenario.name or MISSING} ({run.scenario_kind or MISSING})"],
        ["scale", fmt(p.get("scale"), 3) if p.get("scale") is not None else MISSING],
    ]
    if run.scenario_kind == "ceiling":
        c = run.spec("ceiling") or {}
        rows.append(
            [
                "ceiling loop",
                f"start {fmt(c.get('start_users'))} users, step {fmt(c.get('step_users'))}, "
                f"interval {_secs(c.get('interval_s'))}, max {fmt(c.get('max_users'))}",
            ]
        )
    else:
        rows.append(["users", fmt(users)])
        rows.append(["login window", f"{_secs(window)} (then hold {_secs(p.get('hold_s'))})"])
    if run.scenario_kind == "herd":
        h = run.spec("herd") or {}
        rows.append(
            ["outage", f"{_secs(h.get('outage_s'))}, after settling {_secs(h.get('settle_s'))}"]
        )
    workers = p.get("workers")
    remote = p.get("remote_workers") or 0
    rows.append(["workers", MISSING if workers is None else f"{workers} local, {remote} remote"])
    if p.get("rate_cap"):
        rows.append(["rate cap", f"{fmt(p['rate_cap'])} req/s"])
    rows += [
        ["target", f["target"] or MISSING],
        ["target version", f["server_version"] or MISSING],
    ]
    if run.licensed is not None:
        rows.append(["license", "licensed" if run.licensed else "unlicensed"])
    rows += [
        ["label", f["label"] or MISSING],
        ["architecture", f["architecture"] or MISSING],
        [
            "run window (UTC)",
            f"{clean(f['started_at']) or MISSING} → {clean(f['ended_at']) or MISSING} "
            f"({fmt(f['duration_s'])} s)",
        ],
        [
            "outcome",
            f["abort"] or (f["outcome"] + (f": {f['error']}" if f["error"] else "")),
        ],
        ["Prometheus", p.get("prometheus") or "none given (no server-side figures)"],
        ["mmload", f["tool_version"] or MISSING],
    ]
    return rows


def total_rows(rep: RunReport) -> list[list[str]]:
    """Requests, errors by class, throughput, supported users."""
    f = run_facts(rep)
    rows = [
        ["requests / failed", f"{f['requests']:,} / {f['errors']:,} ({pct(f['error_rate'])})"],
        ["throughput", f"{fmt(f['rps'], 1)} req/s"],
        [
            "failed requests by class",
            ", ".join(
                f"{title}: {rep.error_classes[key]:,}" for key, title in CLASS_TITLES.items()
            ),
        ],
    ]
    if f["supported_users"] is not None:
        rows.append(["supported users", fmt(f["supported_users"])])
    return rows


def reconnect_rows(r: dict[str, Any]) -> list[list[Any]]:
    """The reconnect herd's figures as (what, value) rows."""
    rows = [
        ["WebSockets dropped by the outage at", r["drop_at"] or MISSING],
        [
            "reconnects / started / reconnected / failed",
            f"{r['reconnects']:,} / {r['started']:,} / {r['reconnected']:,} / {r['failed']:,}",
        ],
        ["reconnect success", pct(r["reconnect_success"])],
        ["last client back at", r["last_reconnected"] or MISSING],
        [
            "start lag behind the backoff schedule p50 / p95 / p99 / max (ms)",
            " / ".join(fmt(r[f"lag_ms_{k}"]) for k in ("p50", "p95", "p99", "max")),
        ],
        [
            "scheduled reconnect → connected p50 / p95 / p99 / max (ms)",
            " / ".join(fmt(r[f"to_connected_ms_{k}"]) for k in ("p50", "p95", "p99", "max")),
        ],
    ]
    if "drop_to_connected_ms_p50" in r:
        rows.append(
            [
                "outage start → connected again p50 / p95 / p99 / max (ms)",
                " / ".join(
                    fmt(r[f"drop_to_connected_ms_{k}"]) for k in ("p50", "p95", "p99", "max")
                ),
            ]
        )
    return rows


def ceiling_rows(rep: RunReport) -> list[list[Any]]:
    """One row per measured interval of the ceiling loop."""
    ceiling = rep.run.ceiling
    return [
        [
            clean(iv.at) or MISSING,
            fmt(iv.users),
            "held" if iv.held else "broke",
            ", ".join(iv.failing) or MISSING,
            fmt(iv.next_users),
        ]
        for iv in (ceiling.intervals if ceiling else [])
    ]


def figures(rep: RunReport, top: int) -> list[Figure]:
    """The run report's plots, in page order; a plot without data in the record is left out."""
    w, ax = rep.windows, rep.axis
    requests = int(w["count"].sum()) if len(w) else 0
    out: list[Figure] = []
    aw, rw = rep.arrival_windows, rep.reconnect_windows
    if aw is not None and len(aw):
        title = "Arrivals: scheduled vs started vs logged in vs failed (cumulative, window ends)"
        out.append(Figure("arrivals", title, lambda: plots.arrivals(aw, ax)))
    cw = rep.curve_windows
    if cw is not None and len(cw):
        title = "Arrival curve: requested vs scheduled vs started per window (arrivals/s)"
        out.append(Figure("arrival-curve", title, lambda: plots.arrival_curve(cw, ax)))
    if len(w) and w["login_requests"].sum():
        out.append(Figure("logins", "Logins per second", lambda: plots.logins(w, ax)))
    if len(w) and w["login_p99_ms"].notna().any():
        out.append(
            Figure(
                "login-latency",
                "Login latency p50 / p99: service time and corrected (from the scheduled arrival)",
                lambda: plots.login_latency(w, ax),
            )
        )
    if requests:
        out.append(
            Figure(
                "errors",
                "Errors per second by class",
                lambda: plots.errors_by_class(w, CLASS_TITLES, ax),
            )
        )
    if "connected_users" in w and (w["connected_users"].fillna(0).sum() or w["ws_connects"].sum()):
        out.append(
            Figure("websocket", "WebSockets connected over time", lambda: plots.websocket(w, ax))
        )
        out.append(
            Figure(
                "users",
                "Active users: logged in and connected (at window ends)",
                lambda: plots.users(w, ax),
            )
        )
    if rw is not None and len(rw):
        out.append(
            Figure(
                "reconnects",
                "Reconnect herd: due vs started vs reconnected (cumulative)",
                lambda: plots.reconnects(rw, ax),
            )
        )
    if rep.run.ceiling and rep.run.ceiling.intervals:
        iv, su = rep.run.ceiling.intervals, rep.run.supported_users
        out.append(
            Figure(
                "ceiling",
                "Ceiling loop: users per interval (green held, red broke)",
                lambda: plots.ceiling_steps(iv, su),
            )
        )
    if requests:
        out.append(
            Figure(
                "latency",
                "Latency percentiles, all endpoints (per 10 s)",
                lambda: plots.latency_over_time(w, ax),
            )
        )
        out.append(Figure("throughput", "Throughput", lambda: plots.throughput(w, ax)))
    if not rep.endpoint_windows.empty:
        ew, ep = rep.endpoint_windows, rep.endpoints
        out.append(
            Figure(
                "endpoint-p99",
                f"p99 over time of the {top} busiest endpoints",
                lambda: plots.endpoint_p99(ew, ep, top, ax),
            )
        )
    return out


def server_figures(rep: RunReport) -> list[Block]:
    """Server-side panels from the record's prometheus.json (or why there are none)."""
    snap = rep.prometheus
    if snap is None:
        return [
            Text(
                "No server-side panels: the record has no prometheus.json (the run was given "
                "no --prometheus).",
                note=True,
            )
        ]
    out: list[Block] = []
    for name, panel in snap.panels.items():
        title, unit = record.PROMETHEUS_PANELS.get(name, (panel.title or name, panel.unit))
        if not any(s.values for s in panel.result):
            why = f": {panel.error}" if panel.error else ""
            out.append(
                Text(f"{title}: Prometheus returned no data{why} ({panel.query})", note=True)
            )
            continue
        shown = panel.model_copy(update={"unit": panel.unit or unit})
        out.append(
            Figure(f"server-{name}", title, lambda p=shown: plots.prometheus_panel(p, rep.axis))
        )
    return out


def checks(rep: RunReport) -> list[Check]:
    """One JUnit case per SLO, plus the run's outcome. An SLO that could not be measured fails
    (it is never a pass) unless the scenario marked it optional (then it is skipped)."""
    run = rep.run
    out = [Check("run.outcome", run.outcome == "completed", f"outcome is {run.outcome!r}")]
    for s in run.slos:
        passed = {"pass": True, "fail": False}.get(s.status, None if s.optional else False)
        out.append(Check(f"slo.{s.name}", passed, s.sentence()))
    return out


def view(rep: RunReport, top: int = 8) -> View:
    """The run report: the verdict, the parameters, the plots, then the detail tables."""
    head = Section("Parameters", [Table(["", ""], parameter_rows(rep), kv=True)])
    head.blocks += [Text(n, note=True) for n in rep.notes]
    sections = [head, Section("Totals", [Table(["", ""], total_rows(rep), kv=True)])]
    slos = Section(slo_title(rep.slos))
    if rep.slos:
        slos.blocks.append(Table(SLO_HEADERS, slo_rows(rep.slos), "llllll", kv=True))
    sections.append(slos)
    if rep.sev0:
        title = "Logins" if rep.run.scenario_kind == "ceiling" else "Sev0 login storm"
        sections.append(Section(title, [Table(["", ""], sev0_rows(rep.sev0), kv=True)]))
    if (curve := curve_section(rep)) is not None:
        sections.append(curve)
    if rep.reconnects:
        sections.append(
            Section("Reconnect herd", [Table(["", ""], reconnect_rows(rep.reconnects), kv=True)])
        )
    if rep.run.ceiling and rep.run.ceiling.intervals:
        c = rep.run.ceiling
        sections.append(
            Section(
                "Ceiling loop",
                [
                    Text(
                        f"Supported users: {fmt(rep.run.supported_users)}; converged: "
                        f"{fmt(c.converged)}; capped at the maximum: {fmt(c.capped)}."
                    ),
                    Table(
                        ["measured at", "users", "SLOs", "failing", "next users"],
                        ceiling_rows(rep),
                        "lrlll",
                    ),
                ],
            )
        )
    sections.append(Section("Plots", list(figures(rep, top)), media="html"))
    sections.append(Section("Server", server_figures(rep), media="html"))
    sections.append(
        Section(
            "Endpoints",
            [
                Text("Percentiles from the merged HDR histograms (service time)."),
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
    name = str(rep.run.run_id or rep.run_dir)
    return View(
        stem="report",
        title=f"mmload report: {name}",
        document=document(rep),
        banner=banner(rep),
        sections=sections,
        checks=checks(rep),
        suite=f"mmload.slo.{name}",
    )
