"""The Rich live view of a run: users, arrivals vs schedule, RPS, p50/p99, errors."""

from __future__ import annotations

from rich.table import Table

from mmload.load.status import Snapshot


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f} ms"


def render(snap: Snapshot) -> Table:
    """One frame of the live view."""
    t = Table(
        title=f"mmload run {snap.scenario} ({snap.kind}) -> {snap.target}",
        show_header=False,
        expand=False,
    )
    t.add_column(style="bold")
    t.add_column()
    t.add_row("phase", f"{snap.phase}  ({snap.elapsed_s:,.0f} s)")
    t.add_row("users spawned", f"{snap.users_spawned:,}")
    a = snap.arrivals
    if a is not None:
        t.add_row(
            "arrivals",
            f"{a.arrived:,} of {a.due:,} due ({a.total:,} total); loaded {a.loaded:,}, "
            f"failed {a.failed:,}; lag p99 {_ms(a.lag_p99_ms)}",
        )
    c = snap.ceiling
    if c is not None:
        last = ""
        if c.last_held is not None:
            last = "; last interval " + (
                "held" if c.last_held else "broke " + ",".join(c.last_failing)
            )
        t.add_row("ceiling", f"target {c.target_users:,} users; step {c.step:,}{last}")
    t.add_row("rps (10 s)", f"{snap.recent_rps:,.1f}")
    t.add_row("p50 / p99", f"{_ms(snap.recent_p50_ms)} / {_ms(snap.recent_p99_ms)}")
    rate = snap.errors / snap.requests if snap.requests else 0.0
    t.add_row("requests", f"{snap.requests:,}  errors {snap.errors:,} ({rate:.2%})")
    t.add_row("record", str(snap.run_dir))
    return t
