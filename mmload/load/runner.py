"""Run a scenario with Locust as a library: the run's lifecycle, start to summary.

:class:`ScenarioRun` probes the target, opens the run record (:class:`RecordWriter`), installs
the Ctrl-C / SIGTERM handlers, starts Locust through its role (:mod:`mmload.load.roles`: one
process, or a master and workers), fixes the start time and hands out the plans, runs the
scenario's phase driver (:mod:`mmload.load.phases`) or the ceiling loop
(:mod:`mmload.load.ceiling`), then stops everything, records the arrivals that never came
(``pending``), and writes the final run.json with the summary (and, with ``--prometheus``,
prometheus.json). A stopped run ends ``interrupted`` with its data kept, one stopped by an abort
rule (:mod:`mmload.load.abort`) ``aborted``; a target that does not answer the probe, or answers
no request of the run, ends ``failed`` with the first error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment

from mmload import record
from mmload.config.scenario import RunOptions, Scenario
from mmload.errors import RunFailed
from mmload.load import prom, slo
from mmload.load.abort import AbortWatch
from mmload.load.arrivals import Arrival
from mmload.load.ceiling import CeilingLoop
from mmload.load.clock import WALL, Clock
from mmload.load.context import StopFlag
from mmload.load.csvstats import LocustCSV
from mmload.load.phases import DRIVERS, Phases, expected_s
from mmload.load.plan import Plan
from mmload.load.preflight import (
    PROBE_TIMEOUT_S,
    capacity_warnings,
    load_user_classes,
    probe_license,
    probe_target,
)
from mmload.load.recorder import describe
from mmload.load.roles import role_for
from mmload.load.runmeta import disk_warning, note_schedule, open_record
from mmload.load.schedule import arrival_schedule
from mmload.load.signals import install_signal_handlers, restore_signal_handlers
from mmload.load.status import RunStatus, Snapshot
from mmload.load.summary import first_error, summarize


@dataclass
class RunResult:
    """What ``mmload run`` prints: where the record is and what happened."""

    run_dir: Path
    meta: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)


class ScenarioRun:
    """One run of a scenario against a target (see the module docstring).

    ``on_tick`` gets a :class:`Snapshot` while the run waits (the live view); ``clock``,
    ``user_classes``, ``probe``, ``licensed`` and ``prom_check`` replace the wall clock, the
    scenario's user classes, the target probes and the Prometheus check (tests drive the
    lifecycle with them).
    """

    def __init__(
        self,
        scenario: Scenario,
        opts: RunOptions,
        *,
        scenario_file: str | None = None,
        on_tick: Callable[[Snapshot], None] | None = None,
        announce: Callable[[Path], None] | None = None,
        announce_master: Callable[[str, int], None] | None = None,
        warn: Callable[[str], None] | None = None,
        clock: Clock = WALL,
        user_classes: list[type] | None = None,
        probe: Callable[[str], str | None] | None = None,
        licensed: Callable[[str], bool | None] = probe_license,
        prom_check: Callable[[str], None] = prom.check_prometheus,
    ):
        self.scenario = scenario
        self.opts = opts
        self.scenario_file = scenario_file
        self.on_tick = on_tick
        self.announce = announce
        self.warn = warn
        self.clock = clock
        self.user_classes = user_classes
        # the probe waits no longer than a request may (a target that never answers fails fast)
        timeout = min(PROBE_TIMEOUT_S, scenario.request_timeout_s)
        self.probe = probe or partial(probe_target, timeout_s=timeout)
        self.licensed = licensed
        self.prom_check = prom_check
        self.stop = StopFlag()
        self.watch = AbortWatch(scenario.abort, self.stop, tuple(scenario.slos.exclude))
        self.role = role_for(opts, scenario.locustfile, announce_master)
        self.t0: float | None = None  # the first scheduled arrival, once the plans are out
        self.ceiling: CeilingLoop | None = None
        self.failed_at: str | None = None  # when an exception ended the run
        self.csv: LocustCSV | None = None

    # ---- the whole run -------------------------------------------------------------------
    def execute(self) -> RunResult:
        """Run the scenario; always leaves a finished run record: ``completed``, ``interrupted``
        (data kept) or ``failed`` — any exception inside the run ends it ``failed`` with the
        error and its time in run.json (then raises RunFailed), never ``running``."""
        self._check_prometheus()
        warnings = capacity_warnings(self.peak_users(), self.role.processes)
        classes = self.user_classes or load_user_classes(self.scenario.locustfile)
        low = disk_warning(self.scenario, self.opts, self.peak_users(), self.role.processes)
        warnings += [low] if low else []
        self.writer = open_record(
            self.scenario, self.opts, self.scenario_file, warnings, self._record_failed
        )
        self.run_dir = self.writer.run_dir
        if self.announce:
            self.announce(self.run_dir)
        for w in warnings if self.warn else []:
            self.warn(w)
        try:
            outcome, error = self._run(classes)
        except KeyboardInterrupt:  # before the handlers are in place (the probe)
            outcome, error = "interrupted", None
        except Exception as exc:
            outcome, error = "failed", describe(exc)
            self.failed_at = record.iso(record.utc_now())
        try:
            return self._finish(outcome, error)
        except RunFailed:
            raise
        except Exception as exc:  # the end itself broke: still never `running`
            why = self.writer.abandon(exc)
            raise RunFailed(f"{why} (record: {self.run_dir})") from None

    def _record_failed(self, reason: str) -> None:
        """The record writer's failure (a full disk): stop arrivals, the run ends ``failed``."""
        self.stop.set(reason, "failed")

    def _run(self, classes: list[type]) -> tuple[str, str | None]:
        """Probe the target, start Locust, drive the phases, stop: the outcome and error."""
        try:
            meta = self.writer.meta
            meta["server_version"] = self.probe(self.opts.target)
        except RunFailed as exc:
            return "failed", str(exc)
        meta["licensed"] = self.licensed(self.opts.target)
        s = self.scenario
        self.status = RunStatus(
            s.name,
            s.kind,
            self.opts.target,
            self.run_dir,
            self.clock.time(),
            self.writer.live,
            exclude=tuple(s.slos.exclude),
            expected_s=expected_s(s),
        )
        env = Environment(user_classes=classes, host=self.opts.target, events=events)
        env.stop_timeout = 0.0  # users idle inside their task: stop them at once
        outcome, error = "completed", None
        handlers = install_signal_handlers(self.stop)
        try:
            if self._start(env):
                self.writer.start_heartbeat()
                self._drive()
        except RunFailed as exc:
            outcome, error = "failed", str(exc)
        finally:
            self._shutdown()
            restore_signal_handlers(handlers)
        if self.stop and outcome != "failed":
            outcome = self.stop.outcome
            error = self.stop.reason if outcome == "failed" else None
        return outcome, error

    def _check_prometheus(self) -> None:
        """Required SLOs must be measurable: by the scenario's kind, and server-side ones by a
        Prometheus, which must be one (exit 2 before anything starts)."""
        slo.require_measurable(self.scenario.kind, self.scenario.slos, self.scenario_file)
        slo.require_prometheus(self.scenario.slos, self.opts.prometheus)
        if self.opts.prometheus:
            self.prom_check(self.opts.prometheus)

    def _finish(self, outcome: str, error: str | None) -> RunResult:
        """Compact the record, judge it, write the final run.json; a failed run raises."""
        meta = self.writer.finish(outcome, self._final_meta(error))
        summary = summarize(self.run_dir, meta)
        if outcome == "completed" and not summary["totals"]["answered"]:
            first = first_error(self.run_dir) or "no request was sent"
            outcome, error = "failed", f"no request was answered by the target (first: {first})"
            meta.update(outcome=outcome, error=error)
            summary = summarize(self.run_dir, meta)
        meta["totals"] = summary["totals"]
        meta["slos"] = summary["slos"]
        record.write_run_json(self.run_dir, meta)
        if self.opts.prometheus and self.t0 is not None:
            self._snapshot_prometheus(meta)
        if outcome == "failed":
            raise RunFailed(f"{error} (record: {self.run_dir})")
        return RunResult(self.run_dir, meta, summary)

    def _snapshot_prometheus(self, meta: dict[str, Any]) -> None:
        """Store the run window's server panels in prometheus.json (the report stays offline)."""
        try:
            snap = prom.prometheus_snapshot(
                self.opts.prometheus or "", meta["started_at"], meta["ended_at"]
            )
            record.write_prometheus(self.run_dir, snap)
        except (OSError, ValueError) as exc:  # the record is complete without it
            if self.warn:
                self.warn(f"prometheus.json not written: {exc}")

    def peak_users(self) -> int:
        """The most users this run may have at once."""
        s = self.scenario
        return s.ceiling.max_users if s.kind == "ceiling" else s.users

    # ---- start, drive, stop --------------------------------------------------------------
    def _start(self, env: Environment) -> bool:
        """Start Locust by the role and hand out the plans; False when stopped while waiting."""
        ready = self.role.connect(env, self.writer, self.stop, self.clock)
        self.csv = LocustCSV(env, self.run_dir / "locust", self.writer.fail)
        self.csv.start()
        if not ready:
            return False
        self.writer.settle()
        self.t0 = self.clock.time() + self.role.lead_s
        self.role.distribute(self.scenario, self.t0)
        self.status.t0 = self.t0
        self.status.schedule = note_schedule(self.writer.meta, self.scenario, self.t0)
        self.status.users_spawned = lambda: self.role.runner.user_count
        return True

    def _tick(self) -> None:
        self.watch.check(self.clock.time(), self.writer.live)
        if self.on_tick:
            self.on_tick(self.status.snapshot(self.clock.time()))
        self.role.watch()

    def _drive(self) -> None:
        if self.stop or self.t0 is None:
            return
        s = self.scenario
        phases = Phases(self.role.set_users, self.stop, self.status, self.clock, self._tick)
        if s.kind != "ceiling":
            DRIVERS[s.kind](phases, s, self.t0, arrival_schedule(s))
            return
        live, opts = self.writer.live, self.opts
        self.ceiling = CeilingLoop(
            s.ceiling,
            phases,
            measure=lambda a, b: slo.window_verdicts(
                live, s.slos, s.prometheus, a, b, opts.prometheus
            ),
            arrived=lambda: live.arrived,
            reported_since=lambda t: self.writer.all_reported_since(t, self.role.processes),
        )
        self.ceiling.run()

    def _shutdown(self) -> None:
        """Stop the users, flush every process, close Locust's CSVs, quit, fill in arrivals."""
        self.status.phase = "stopping"
        try:
            self.role.stop_users(self.clock)
            if self.csv is not None:
                self.csv.finish()
        finally:
            self.role.quit()
        self._record_missing_arrivals()

    def _record_missing_arrivals(self) -> None:
        """Scheduled users that never arrived (the run ended first) are ``pending``."""
        if self.t0 is None:
            return
        plan = Plan.for_process(self.scenario, self.t0, self.role.processes, 0, "master")
        seen = self.writer.login_users
        missing = [
            Arrival(plan.username(g), plan.arrival_time(g)).row()
            for g in range(plan.schedule_users)
            if plan.username(g) not in seen
        ]
        if missing:
            self.writer.add_arrivals("master", missing)

    def _final_meta(self, error: str | None) -> dict[str, Any]:
        extra: dict[str, Any] = {"error": error, "workers_reported": sorted(self.writer.batches)}
        extra.update(self.watch.record())
        if self.failed_at:
            extra["failed_at"] = self.failed_at
        if self.stop:
            extra["stop_reason"] = self.stop.reason
        if self.scenario.kind == "ceiling" and self.ceiling is not None:
            extra.update(self.ceiling.summary())
        return extra
