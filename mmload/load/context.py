"""The run context: what every user of one process shares, attached to its Locust environment.

A process that runs users (the only process of a local run, or a worker) attaches one
:class:`RunContext` to its ``Environment`` before users spawn; users read it with
:func:`run_context` — the one accessor. It holds the process's :class:`~mmload.load.plan.Plan`,
the collector its arrivals go to, and the :class:`StopFlag` the run (Ctrl-C, SIGTERM, or a rule
that stops arrivals) sets. A plain ``locust -f`` run of ``MattermostUser`` gets the default plan
on first use.

Driving users from your own environment (as the benchmarks do)::

    ctx = attach(env, RunContext(Plan(scenario=..., worker_name="w0")))
    ctx.collector = Collector(env, "w0", RecordWriter(run_dir, meta).ingest, flush_s=2.0)
    ctx.collector.start()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from mmload.load.arrivals import Arrival
from mmload.load.plan import Plan, default_plan

if TYPE_CHECKING:  # the collector imports pyarrow; a plain locustfile never needs it
    from mmload.load.collector import Collector


class StopFlag:
    """Why the run stops (the first reason wins); the phase loops and waiting users poll it."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.outcome: str = "interrupted"

    def set(self, reason: str, outcome: str = "interrupted") -> None:
        """Ask the run to stop: ``reason`` in words, ``outcome`` for run.json."""
        if self.reason is None:
            self.reason = reason
            self.outcome = outcome

    def __bool__(self) -> bool:
        return self.reason is not None


@dataclass
class RunContext:
    """One process's share of a run, as its users see it."""

    plan: Plan
    collector: Collector | None = None
    stop: StopFlag = field(default_factory=StopFlag)

    def record_arrival(self, arrival: Arrival) -> None:
        """Hand an arrival row to the recorder (dropped when nothing records this process)."""
        if self.collector is not None:
            self.collector.add_arrival(arrival.row())


_CONTEXTS: WeakKeyDictionary[Any, RunContext] = WeakKeyDictionary()


def attach(environment: Any, context: RunContext) -> RunContext:
    """Make ``context`` the run context of ``environment`` (replacing any earlier one)."""
    _CONTEXTS[environment] = context
    return context


def run_context(environment: Any) -> RunContext:
    """The run context of ``environment``; the default plan's on first use without one."""
    context = _CONTEXTS.get(environment)
    if context is None:
        context = attach(environment, RunContext(default_plan()))
    return context
