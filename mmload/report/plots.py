"""Plotly figures of a run report (pure: data frames in, figures out)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

LAYOUT = {"height": 340, "margin": {"l": 60, "r": 20, "t": 50, "b": 40}, "template": "plotly_white"}


def _fig(title: str, y_title: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, yaxis_title=y_title, **LAYOUT)
    return fig


def latency_over_time(windows: pd.DataFrame) -> go.Figure:
    """p50/p95/p99 of all requests per 10 s window (merged HDR histograms)."""
    fig = _fig("Latency percentiles over time (all endpoints, per 10 s)", "ms")
    for col in ("p50_ms", "p95_ms", "p99_ms"):
        fig.add_trace(go.Scatter(x=windows["time"], y=windows[col], name=col[:-3], mode="lines"))
    return fig


def throughput_and_errors(windows: pd.DataFrame) -> go.Figure:
    """Requests per second and errors per second per window."""
    fig = _fig("Throughput and errors (per 10 s)", "requests/s")
    fig.add_trace(go.Scatter(x=windows["time"], y=windows["rps"], name="requests/s", mode="lines"))
    fig.add_trace(
        go.Bar(
            x=windows["time"], y=windows["errors"] / 10.0, name="errors/s", marker_color="crimson"
        )
    )
    return fig


def active_users(windows: pd.DataFrame) -> go.Figure | None:
    """Users running per window (Locust's user count), when recorded."""
    if "active_users" not in windows or windows["active_users"].isna().all():
        return None
    fig = _fig("Active users", "users")
    fig.add_trace(
        go.Scatter(x=windows["time"], y=windows["active_users"], name="users", mode="lines")
    )
    return fig


def arrivals_vs_schedule(aw: pd.DataFrame | None) -> go.Figure | None:
    """Cumulative scheduled arrivals against users started and fully loaded."""
    if aw is None or aw.empty:
        return None
    fig = _fig("Login arrivals against the schedule (cumulative)", "users")
    for col, name in (
        ("scheduled_cum", "scheduled"),
        ("started_cum", "started"),
        ("loaded_cum", "fully loaded"),
    ):
        fig.add_trace(go.Scatter(x=aw["time"], y=aw[col], name=name, mode="lines"))
    return fig


def endpoint_p99(ew: pd.DataFrame, endpoints: pd.DataFrame, top: int) -> go.Figure | None:
    """p99 over time of the busiest endpoints."""
    if ew.empty:
        return None
    busiest = endpoints.sort_values("count", ascending=False)["name"].head(top).tolist()
    fig = _fig(f"p99 over time, {len(busiest)} busiest endpoints", "ms")
    for name in busiest:
        sel = ew[ew["name"] == name]
        x = pd.to_datetime(sel["window_start"], unit="s", utc=True)
        fig.add_trace(go.Scatter(x=x, y=sel["p99_ms"], name=name, mode="lines"))
    return fig


def ltng_graph(graph: dict) -> go.Figure:
    """One of the time series an ltng report carries (CPU, RPS, API times…)."""
    values = graph.get("Values") or []
    x = pd.to_datetime([v[0] for v in values], unit="s", utc=True)
    y = pd.to_numeric(pd.Series([v[1] for v in values]), errors="coerce")
    fig = _fig(str(graph.get("Name", "")), "")
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
