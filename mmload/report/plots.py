"""Plotly figures of the reports (pure: data frames in, figures out).

Every time-series figure of a run report shares one x range (the run's windows, ``axis``), so
the plots line up one above the other. Rates over a 10 s window are drawn at the window's
middle; running totals at the window's end (``arrival_windows``' ``time`` column).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import plotly.graph_objects as go

from mmload import record

LAYOUT = {"height": 340, "margin": {"l": 60, "r": 20, "t": 50, "b": 40}, "template": "plotly_white"}
Axis = tuple[datetime, datetime] | None
HALF_WINDOW = timedelta(seconds=record.WINDOW_S / 2)
ERROR_COLOURS = {
    "auth": "#7b1fa2",
    "rate_limited": "#f9a825",
    "client": "#8d6e63",
    "server": "#c62828",
    "transport": "#37474f",
    "other": "#90a4ae",
}


def _fig(y_title: str, axis: Axis = None) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(yaxis_title=y_title, hovermode="x unified", **LAYOUT)
    if axis is not None:
        fig.update_xaxes(range=[axis[0], axis[1]], type="date")
    return fig


def _mid(w: pd.DataFrame) -> pd.Series:
    """The middle of each window (where a rate over it is drawn)."""
    return w["time"] + HALF_WINDOW


MODE = "lines+markers"  # a short run has a window or two: a lone point must still show
MARKER = {"size": 4}


def _line(x: pd.Series, y: pd.Series, name: str, **kw: object) -> go.Scatter:
    return go.Scatter(x=x, y=y, name=name, mode=MODE, marker=MARKER, **kw)


def _from_zero(cum: pd.DataFrame) -> pd.DataFrame:
    """Running totals with a first point at 0 where the first window starts."""
    first = cum.iloc[:1].copy()
    first["time"] = first["time"] - 2 * HALF_WINDOW
    for col in [c for c in cum.columns if c.endswith("_cum")]:
        first[col] = 0
    return pd.concat([first, cum], ignore_index=True)


def latency_over_time(w: pd.DataFrame, axis: Axis) -> go.Figure:
    """p50/p95/p99 of all requests per 10 s window (merged HDR histograms)."""
    fig = _fig("ms", axis)
    for col in ("p50_ms", "p95_ms", "p99_ms"):
        fig.add_trace(_line(_mid(w), w[col], col[:-3]))
    return fig


def throughput(w: pd.DataFrame, axis: Axis) -> go.Figure:
    """Requests per second and failed requests per second."""
    fig = _fig("per second", axis)
    fig.add_trace(_line(_mid(w), w["rps"], "requests/s"))
    fig.add_trace(_line(_mid(w), w["errors"] / record.WINDOW_S, "failed/s", line_color="crimson"))
    return fig


def arrivals(aw: pd.DataFrame, axis: Axis) -> go.Figure:
    """Scheduled vs started vs logged in vs failed (and fully loaded), cumulative at window end."""
    fig = _fig("users (cumulative)", axis)
    aw = _from_zero(aw)
    for col, name, extra in (
        ("scheduled_cum", "scheduled", {"line": {"dash": "dot", "color": "#5f6368"}}),
        ("started_cum", "started", {}),
        ("logged_in_cum", "logged in", {}),
        ("loaded_cum", "fully loaded", {}),
        ("failed_cum", "failed", {"line": {"color": "crimson"}}),
    ):
        fig.add_trace(_line(aw["time"], aw[col], name, **extra))
    return fig


def arrival_curve(cw: pd.DataFrame, axis: Axis) -> go.Figure:
    """The requested curve vs the arrivals scheduled and started, per curve window (per s)."""
    fig = _fig("arrivals/s", axis)
    width = (cw["start_s"].iloc[1] - cw["start_s"].iloc[0]) if len(cw) > 1 else record.WINDOW_S
    x = cw["time"] + timedelta(seconds=float(width) / 2)
    fig.add_trace(
        _line(x, cw["requested"] / width, "requested", line={"dash": "dot", "color": "#5f6368"})
    )
    fig.add_trace(_line(x, cw["scheduled"] / width, "scheduled", line={"dash": "dash"}))
    fig.add_trace(_line(x, cw["started"] / width, "started"))
    return fig


def logins(w: pd.DataFrame, axis: Axis) -> go.Figure:
    """Login requests per second: answered 200, and failed (any error)."""
    fig = _fig("logins/s", axis)
    s = record.WINDOW_S
    fig.add_trace(_line(_mid(w), w["login_ok"] / s, "succeeded", line_color="#137333"))
    fig.add_trace(_line(_mid(w), w["login_failed"] / s, "failed", line_color="crimson"))
    fig.add_trace(_line(_mid(w), w["login_requests"] / s, "attempted", line={"dash": "dot"}))
    return fig


def login_latency(w: pd.DataFrame, axis: Axis) -> go.Figure:
    """Login p50/p99 per window: service time, and corrected (from the scheduled arrival)."""
    fig = _fig("ms", axis)
    for col, name, extra in (
        ("login_p50_ms", "p50 service", {}),
        ("login_p99_ms", "p99 service", {}),
        ("login_p50_corrected_ms", "p50 corrected", {"line": {"dash": "dash"}}),
        ("login_p99_corrected_ms", "p99 corrected", {"line": {"dash": "dash"}}),
    ):
        if w[col].notna().any():
            fig.add_trace(_line(_mid(w), w[col], name, **extra))
    return fig


def errors_by_class(w: pd.DataFrame, classes: dict[str, str], axis: Axis) -> go.Figure:
    """Failed requests per second by class, stacked (every class drawn, zero or not)."""
    fig = _fig("errors/s", axis)
    for key, title in classes.items():
        fig.add_trace(
            go.Scatter(
                x=_mid(w),
                y=w[f"errors_{key}"] / record.WINDOW_S,
                name=title,
                mode=MODE,
                marker=MARKER,
                stackgroup="errors",
                line={"color": ERROR_COLOURS.get(key)},
            )
        )
    return fig


def websocket(w: pd.DataFrame, axis: Axis) -> go.Figure:
    """WebSockets connected at each window's end, and connects per second (ok / failed)."""
    fig = _fig("WebSockets connected", axis)
    end = w["time"] + 2 * HALF_WINDOW
    fig.add_trace(_line(end, w["connected_users"], "connected", line={"width": 3}))
    s = record.WINDOW_S
    fig.add_trace(_line(_mid(w), w["ws_connects"] / s, "connects/s", yaxis="y2"))
    fig.add_trace(_line(_mid(w), w["ws_connect_failures"] / s, "failed connects/s", yaxis="y2"))
    fig.update_layout(
        yaxis2={"title": "per second", "overlaying": "y", "side": "right", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def users(w: pd.DataFrame, axis: Axis) -> go.Figure:
    """Active users: logged in, and logged in with the WebSocket connected (Locust's spawned
    count only as a dotted reference)."""
    fig = _fig("users", axis)
    end = w["time"] + 2 * HALF_WINDOW
    fig.add_trace(_line(end, w["connected_users"], "logged in and connected", line={"width": 3}))
    fig.add_trace(_line(end, w["logged_in_users"], "logged in"))
    if "spawned_users" in w and w["spawned_users"].notna().any():
        fig.add_trace(
            _line(
                w["time"], w["spawned_users"], "spawned by Locust (reference)", line={"dash": "dot"}
            )
        )
    return fig


def reconnects(rw: pd.DataFrame, axis: Axis) -> go.Figure:
    """The reconnect herd: reconnects due by the backoff rule vs started vs reconnected."""
    fig = _fig("clients (cumulative)", axis)
    rw = _from_zero(rw)
    for col, name, extra in (
        ("scheduled_cum", "due (backoff schedule)", {"line": {"dash": "dot"}}),
        ("started_cum", "started", {}),
        ("reconnected_cum", "reconnected", {"line": {"width": 3}}),
        ("failed_cum", "failed", {"line": {"color": "crimson"}}),
    ):
        fig.add_trace(_line(rw["time"], rw[col], name, **extra))
    return fig


def endpoint_p99(ew: pd.DataFrame, endpoints: pd.DataFrame, top: int, axis: Axis) -> go.Figure:
    """p99 over time of the busiest endpoints."""
    busiest = endpoints.sort_values("count", ascending=False)["name"].head(top).tolist()
    fig = _fig("ms", axis)
    for name in busiest:
        sel = ew[ew["name"] == name]
        x = pd.to_datetime(sel["window_start"], unit="s", utc=True) + HALF_WINDOW
        fig.add_trace(_line(x, sel["p99_ms"], name))
    return fig


def ceiling_steps(intervals: list[record.CeilingInterval], supported: float | None) -> go.Figure:
    """The ceiling loop: users measured at each interval, held (green) or broke (red)."""
    fig = _fig("users")
    x = [iv.at for iv in intervals]
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[iv.users for iv in intervals],
            name="users measured",
            mode="lines+markers",
            line={"shape": "hv", "color": "#5f6368"},
            marker={
                "size": 11,
                "color": ["#137333" if iv.held else "#c62828" for iv in intervals],
            },
            text=["held" if iv.held else "broke: " + ", ".join(iv.failing) for iv in intervals],
        )
    )
    if supported is not None and x:
        fig.add_trace(
            go.Scatter(
                x=[x[0], x[-1]],
                y=[supported, supported],
                name=f"supported users ({supported:,.0f})",
                mode="lines",
                line={"dash": "dash", "color": "#1a73e8"},
            )
        )
    return fig


def prometheus_panel(panel: record.PromPanel, axis: Axis) -> go.Figure:
    """One server-side panel: every series of the stored range query."""
    fig = _fig(panel.unit or "", axis)
    for series in panel.result:
        label = ", ".join(f"{k}={v}" for k, v in sorted(series.metric.items()) if k != "__name__")
        x = pd.to_datetime([t for t, _ in series.values], unit="s", utc=True)
        y = pd.to_numeric(pd.Series([v for _, v in series.values]), errors="coerce")
        fig.add_trace(_line(x, y, label or panel.title or ""))
    return fig


def ltng_graph(graph: dict) -> go.Figure:
    """One of the time series an ltng report carries (CPU, RPS, API times…)."""
    values = graph.get("Values") or []
    x = pd.to_datetime([v[0] for v in values], unit="s", utc=True)
    y = pd.to_numeric(pd.Series([v[1] for v in values]), errors="coerce")
    fig = _fig("")
    fig.add_trace(go.Scatter(x=x, y=y, name=str(graph.get("Name", "")), mode="lines"))
    return fig


def change_bars(sel: pd.DataFrame) -> go.Figure:
    """compare: changes (delta %) of one kind and stat as horizontal bars, worse in red."""
    from mmload.report.values import go_duration

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
    fig.update_layout(**{**LAYOUT, "height": 200 + 22 * len(sel)})
    fig.update_yaxes(autorange="reversed")
    return fig


def ceiling_bars(rows: list[dict]) -> go.Figure:
    """ceiling: mean supported users per architecture, one bar per label, min..max as error."""
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
    fig.update_layout(barmode="group", **LAYOUT)
    return fig
