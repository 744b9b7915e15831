"""How a run shows its progress: the Rich live view on a terminal, one plain line every 10 s
off a terminal (CI, nohup, tee). Both read a :class:`Snapshot` and nothing else of the run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.table import Table

from mmload.load.status import Snapshot

PLAIN_EVERY_S = 10.0


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f} ms"


def _duration(s: float | None) -> str:
    if s is None:
        return "?"
    s = max(0, round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _rate(v: float | None) -> str:
    return "-" if v is None else f"{v:.2%}"


def render(snap: Snapshot) -> Table:
    """One frame of the live view."""
    t = Table(
        title=f"mmload run {snap.scenario} ({snap.kind}) -> {snap.target}",
        show_header=False,
        expand=False,
    )
    t.add_column(style="bold")
    t.add_column()
    eta = f", ETA {_duration(snap.eta_s)}" if snap.eta_s is not None else ""
    expected = f" of {_duration(snap.expected_s)}" if snap.expected_s is not None else ""
    t.add_row("phase", f"{snap.phase}  ({_duration(snap.elapsed_s)}{expected}{eta})")
    t.add_row("users spawned", f"{snap.users_spawned:,}")
    a = snap.arrivals
    if a is not None:
        t.add_row(
            "arrivals",
            f"{a.arrived:,} of {a.due:,} due ({a.total:,} total); started {a.started:,}, "
            f"loaded {a.loaded:,}, failed {a.failed:,}; lag p99 {_ms(a.lag_p99_ms)}",
        )
    t.add_row("websockets", f"{snap.websockets:,} connected")
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


def plain_line(snap: Snapshot) -> str:
    """One status line: phase, elapsed/expected, arrivals, rps, error rate, p99 (recent 10 s)."""
    parts = [
        f"[{_duration(snap.elapsed_s)}/{_duration(snap.expected_s)}] {snap.phase}",
    ]
    a = snap.arrivals
    if a is not None:
        parts.append(
            f"arrivals due {a.due:,}/{a.total:,} started {a.started:,} loaded {a.loaded:,} "
            f"failed {a.failed:,}"
        )
    c = snap.ceiling
    if c is not None:
        parts.append(f"ceiling {c.target_users:,} users")
    parts.append(f"users {snap.users_spawned:,} ws {snap.websockets:,}")
    parts.append(
        f"rps {snap.recent_rps:,.1f} errors {_rate(snap.recent_error_rate)} "
        f"p99 {_ms(snap.recent_p99_ms)}"
    )
    return " | ".join(parts)


@dataclass
class PlainProgress:
    """Prints :func:`plain_line` at most once every ``every_s`` seconds of the run's elapsed
    time (the runner's injectable clock), the first ``every_s`` after the start: give it every
    snapshot."""

    emit: Callable[[str], None]
    every_s: float = PLAIN_EVERY_S
    _next: float = 0.0

    def __post_init__(self) -> None:
        self._next = self.every_s

    def __call__(self, snap: Snapshot) -> None:
        if snap.elapsed_s >= self._next:
            self.emit(plain_line(snap))
            while self._next <= snap.elapsed_s:
                self._next += self.every_s
