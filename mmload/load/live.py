"""The Rich live view of a run: users, arrivals vs schedule, RPS, p50/p99, errors."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:
    from mmload.load.runner import ScenarioRun


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f} ms"


def render(run: ScenarioRun) -> Table:
    """One frame of the live view."""
    now = time.time()
    s = run.scenario
    live = run.writer.live
    recent = live.window(now - 12, now - 2, tuple(s.slos.exclude))
    t = Table(
        title=f"mmload run {s.name} ({s.kind}) -> {run.opts.target}",
        show_header=False,
        expand=False,
    )
    t.add_column(style="bold")
    t.add_column()
    elapsed = now - run.started
    t.add_row("phase", f"{run.phase}  ({elapsed:,.0f} s)")
    runner = getattr(run, "runner", None)
    t.add_row("users spawned", f"{getattr(runner, 'user_count', 0):,}")
    if s.kind != "ceiling" and run.t0:
        due = 0
        if now >= run.t0:
            due = min(s.users, int((now - run.t0) / max(s.arrival_s, 1e-9) * s.users) + 1)
        lag = sorted(live.lag_ms)
        lag99 = lag[int(0.99 * (len(lag) - 1))] if lag else None
        t.add_row(
            "arrivals",
            f"{live.arrived:,} of {due:,} due ({s.users:,} total); loaded {live.loaded:,}, "
            f"failed {live.arrivals_failed:,}; lag p99 {_ms(lag99)}",
        )
    if run.ceiling is not None:
        last = run.ceiling_log[-1] if run.ceiling_log else None
        t.add_row(
            "ceiling",
            f"target {run.ceiling.users:,} users; step {run.ceiling.step:,}"
            + (
                "; last interval "
                + ("held" if last["held"] else "broke " + ",".join(last["failing"]))
                if last
                else ""
            ),
        )
    t.add_row("rps (10 s)", f"{recent['rps']:,.1f}")
    t.add_row("p50 / p99", f"{_ms(recent['p50_ms'])} / {_ms(recent['p99_ms'])}")
    rate = live.failed / live.total if live.total else 0.0
    t.add_row("requests", f"{live.total:,}  errors {live.failed:,} ({rate:.2%})")
    t.add_row("record", str(run.run_dir))
    return t
