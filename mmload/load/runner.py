"""Run a scenario with Locust as a library: local runner, or master + N local worker processes.

The runner decides the plan (start time, who arrives when), drives the user count through the
scenario's phases (storm, herd, steady, ceiling), writes the run record through
:class:`~mmload.load.recorder.RecordWriter`, and stops cleanly on Ctrl-C / SIGTERM (outcome
``interrupted``, data kept).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.stats import StatsCSVFileWriter

from mmload import __version__, record
from mmload.config.scenario import RunOptions, Scenario
from mmload.errors import RunFailed, UserError
from mmload.load import slo
from mmload.load.ceiling import CeilingController
from mmload.load.plan import BATCH_MESSAGE, DONE_MESSAGE, PLAN_MESSAGE, Plan
from mmload.load.recorder import Collector, RecordWriter
from mmload.load.schedule import herd_offsets
from mmload.load.summary import summarize
from mmload.load.user import MattermostUser
from mmload.net import free_port

log = logging.getLogger(__name__)

LEAD_S = 1.0  # the first arrival is scheduled this long after the users start spawning
STOP_TIMEOUT_S = 15.0


@dataclass
class RunResult:
    """What ``mmload run`` prints: where the record is and what happened."""

    run_dir: Path
    meta: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)


def probe_target(target: str, timeout_s: float = 10.0) -> str | None:
    """The server version the target reports (``Version`` of config/client), or raise."""
    url = target.rstrip("/") + "/api/v4/config/client?format=old"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            cfg = json.loads(resp.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFailed(
            f"target {target} did not answer GET /api/v4/config/client: {exc}"
        ) from None
    version = cfg.get("Version")
    build = cfg.get("BuildNumber")
    return f"{version} (build {build})" if version and build else version


def raise_open_files_limit(needed: int) -> str | None:
    """Raise the soft open-files limit to the hard one; a warning if ``needed`` still won't fit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if soft != resource.RLIM_INFINITY and needed > soft:
        return (
            f"each process may need ~{needed:,} open files (HTTP + WebSocket per user) but the "
            f"limit is {soft:,}: use more --workers or raise `ulimit -n`"
        )
    return None


def load_user_classes(locustfile: str | None) -> list[type]:
    """MattermostUser, or the user classes of a custom locustfile."""
    if not locustfile:
        return [MattermostUser]
    from locust.util.load_locustfile import load_locustfile

    try:
        classes, _shapes = load_locustfile(locustfile)
    except SystemExit:
        raise UserError("could not load the locustfile", source=locustfile) from None
    except Exception as exc:
        raise UserError(f"could not load the locustfile: {exc}", source=locustfile) from None
    found = [c for c in classes.values() if issubclass(c, MattermostUser)] or list(classes.values())
    if not found:
        raise UserError("the locustfile defines no User class", source=locustfile)
    # a plain `from mmload.load.user import MattermostUser` alongside a subclass: keep the subclass
    subclasses = [c for c in found if c is not MattermostUser]
    return subclasses or found


class StopFlag:
    """Set by Ctrl-C / SIGTERM (or the caller); the phase loops poll it."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def __bool__(self) -> bool:
        return self.reason is not None


class ScenarioRun:
    """One run of a scenario against a target (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        opts: RunOptions,
        *,
        scenario_file: str | None = None,
        on_tick: Callable[[ScenarioRun], None] | None = None,
        announce: Callable[[Path], None] | None = None,
        announce_master: Callable[[str, int], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ):
        self.scenario = scenario
        self.opts = opts
        self.scenario_file = scenario_file
        self.on_tick = on_tick
        self.announce = announce
        self.announce_master = announce_master
        self.warn = warn
        self.warnings: list[str] = []
        self.stop = StopFlag()
        self.started = time.time()
        self.t0: float | None = None
        self.phase = "starting"
        self.ceiling: CeilingController | None = None
        self.ceiling_log: list[dict[str, Any]] = []
        self.workers: list[subprocess.Popen] = []
        self.worker_logs: list[Any] = []
        self.done_workers: set[str] = set()
        self.n_workers = opts.workers + opts.remote_workers

    # ---- the whole run -------------------------------------------------------------------
    def execute(self) -> RunResult:
        """Run the scenario; always leaves a finished run record (or an interrupted one)."""
        server_version = probe_target(self.opts.target)
        per_process = self.peak_users() // max(1, self.n_workers)
        self.warnings = [w for w in [raise_open_files_limit(2 * per_process + 100)] if w]
        if per_process > 3000:
            self.warnings.append(
                f"{per_process:,} users per process: Locust may saturate one core; consider "
                "--workers N (Mattermost's own tool runs ~2,000 users per 4-vCPU agent)"
            )
        classes = load_user_classes(self.scenario.locustfile)
        self.run_dir = record.new_run_dir(self.opts.out, self.scenario.name, self.opts.label)
        self.meta = self._initial_meta(server_version)
        self.meta["warnings"] = self.warnings
        self.writer = RecordWriter(self.run_dir, self.meta)
        if self.announce:
            self.announce(self.run_dir)
        if self.warn:
            for w in self.warnings:
                self.warn(w)
        self.env = Environment(user_classes=classes, host=self.opts.target, events=events)
        self.env.stop_timeout = 0.0  # users idle inside their task: stop them at once
        outcome, error = "completed", None
        old = self._install_signal_handlers()
        try:
            self._start_runner()
            self.writer.start_heartbeat()
            self._drive()
            if self.stop:
                outcome = "interrupted"
        except RunFailed as exc:
            outcome, error = "failed", str(exc)
        finally:
            self._shutdown()
            self._restore_signal_handlers(old)
        extra = self._final_meta(error)
        meta = self.writer.finish(outcome, extra)
        summary = summarize(self.run_dir, meta)
        meta["totals"] = summary["totals"]
        meta["slos"] = summary["slos"]
        record.write_run_json(self.run_dir, meta)
        if outcome == "failed":
            raise RunFailed(f"{error} (record: {self.run_dir})")
        return RunResult(self.run_dir, meta, summary)

    def peak_users(self) -> int:
        """The most users this run may have at once."""
        s = self.scenario
        return s.ceiling.max_users if s.kind == "ceiling" else s.users

    def _initial_meta(self, server_version: str | None) -> dict[str, Any]:
        s = self.scenario
        return {
            "schema": record.SCHEMA_VERSION,
            "run_id": self.run_dir.name,
            "scenario": {
                "name": s.name,
                "kind": s.kind,
                "file": self.scenario_file,
                "spec": s.model_dump(mode="json", exclude={"population": {"password"}}),
            },
            "parameters": {
                "scale": self.opts.scale,
                "users": s.users,
                "arrival_s": s.arrival_s,
                "hold_s": s.hold_s,
                "workers": self.opts.workers,
                "remote_workers": self.opts.remote_workers,
                "rate_cap": s.rate_cap,
                "prometheus": self.opts.prometheus,
            },
            "target": self.opts.target,
            "server_version": server_version,
            "label": self.opts.label,
            "architecture": self.opts.architecture,
            "tool_version": __version__,
            "started_at": record.iso(record.utc_now()),
            "ended_at": None,
            "outcome": "running",
            "slos": [],
            "supported_users": None,
        }

    def _final_meta(self, error: str | None) -> dict[str, Any]:
        extra: dict[str, Any] = {"error": error, "workers_reported": sorted(self.writer.batches)}
        if self.scenario.kind == "ceiling" and self.ceiling is not None:
            extra["supported_users"] = self.ceiling.supported_users()
            extra["ceiling"] = {
                "converged": bool(self.ceiling.history and self.ceiling.history[-1].done),
                "capped": not self.ceiling.broke,
                "intervals": self.ceiling_log,
            }
        return extra

    # ---- signals -------------------------------------------------------------------------
    def _install_signal_handlers(self) -> list[Any]:
        handlers = []
        for sig, why in ((signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")):
            with contextlib.suppress(ValueError):  # not the main thread
                handlers.append(gevent.signal_handler(sig, self.stop.set, why))
        return handlers

    @staticmethod
    def _restore_signal_handlers(handlers: list[Any]) -> None:
        for h in handlers:
            h.cancel()
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    # ---- runners -------------------------------------------------------------------------
    def _plan(self, index: int, name: str) -> Plan:
        s = self.scenario
        n = max(1, self.n_workers)
        scheduled = 0 if s.kind == "ceiling" else s.users
        herd_at = None
        if s.kind == "herd" and self.t0 is not None:
            herd_at = self.t0 + s.arrival_s + s.herd.settle_s
        return Plan(
            scenario=s,
            t0=self.t0,
            workers=n,
            worker_index=index,
            worker_name=name,
            schedule_users=scheduled,
            herd_drop_at=herd_at,
            flush_s=min(record.FLUSH_INTERVAL_S, 2.0),
            rate_cap=s.rate_cap / n if s.rate_cap else None,
        )

    def _start_runner(self) -> None:
        self.t0 = time.time() + LEAD_S
        if self.n_workers == 0:
            self.runner = self.env.create_local_runner()
            plan = self._plan(0, "local")
            self.env.mmload_plan = plan
            self.collector = Collector(self.env, "local", self.writer.ingest, plan.flush_s)
            self.env.mmload_collector = self.collector
            self.collector.start()
        else:
            self._start_master()
        self.csv = StatsCSVFileWriter(
            self.env, [0.5, 0.9, 0.95, 0.99, 1.0], str(self.run_dir / "locust"), full_history=True
        )
        self.csv_greenlet = gevent.spawn(self.csv.stats_writer)

    def _start_master(self) -> None:
        port = self.opts.master_port or free_port(self.opts.master_bind)
        self.runner = self.env.create_master_runner(self.opts.master_bind, port)
        self.collector = None
        self.runner.register_message(BATCH_MESSAGE, lambda msg, **_: self.writer.ingest(msg.data))
        self.runner.register_message(
            DONE_MESSAGE, lambda msg, **_: self.done_workers.add(msg.data["worker"])
        )
        host = "127.0.0.1" if self.opts.master_bind in ("0.0.0.0", "*") else self.opts.master_bind
        for i in range(self.opts.workers):
            cmd = [
                sys.executable,
                "-m",
                "mmload.cli",
                "worker",
                "--with-parent",
                "--master",
                host,
                "--master-port",
                str(port),
            ]
            if self.scenario.locustfile:
                cmd += ["--locustfile", self.scenario.locustfile]
            logf = (self.run_dir / f"worker-{i}.log").open("w")
            self.worker_logs.append(logf)
            self.workers.append(
                subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
            )
        if self.opts.remote_workers and self.announce_master:
            self.announce_master(f"{self.opts.master_bind}:{port}", self.opts.remote_workers)
        deadline = time.time() + self.opts.expect_workers_timeout_s
        while len(self.runner.clients.ready) < self.n_workers:
            if self.stop:
                return
            if time.time() > deadline:
                ready = len(self.runner.clients.ready)
                raise RunFailed(f"only {ready} of {self.n_workers} workers connected")
            for w in self.workers:
                if w.poll() is not None:
                    raise RunFailed(f"a worker process exited (code {w.returncode}); see its log")
            gevent.sleep(0.2)
        self.t0 = time.time() + LEAD_S + 1.0
        for i, client_id in enumerate(sorted(self.runner.clients.keys())):
            plan = self._plan(i, f"w{i}")
            self.runner.send_message(PLAN_MESSAGE, plan.to_message(), client_id=client_id)

    # ---- phases --------------------------------------------------------------------------
    def _wait_until(self, t: float) -> bool:
        """Sleep until ``t`` (epoch) unless stopped; False when stopped."""
        while time.time() < t:
            if self.stop:
                return False
            if self.on_tick:
                self.on_tick(self)
            self._check_workers()
            gevent.sleep(min(0.5, max(0.0, t - time.time())))
        return not self.stop

    def _check_workers(self) -> None:
        for w in self.workers:
            if w.poll() is not None:
                raise RunFailed(f"a worker process died (code {w.returncode}); see its log")

    def _spawn_rate(self, users: int, over_s: float) -> float:
        return max(50.0, 4.0 * users / max(1.0, over_s))

    def _drive(self) -> None:
        if self.stop:
            return
        s = self.scenario
        if s.kind == "ceiling":
            self._drive_ceiling()
            return
        self.phase = "arrivals"
        self.runner.start(s.users, self._spawn_rate(s.users, s.arrival_s))
        assert self.t0 is not None
        end_arrivals = self.t0 + s.arrival_s
        if not self._wait_until(end_arrivals):
            return
        if s.kind == "herd":
            drop_at = end_arrivals + s.herd.settle_s
            self.phase = "settle"
            if not self._wait_until(drop_at):
                return
            self.phase = "herd"
            plan = self._plan(0, "herd")
            last = max(herd_offsets(500, s.herd.outage_s, plan.backoff()))
            if not self._wait_until(drop_at + last + 2.0):
                return
            end_arrivals = time.time()
        self.phase = "hold"
        self._wait_until(end_arrivals + s.hold_s)

    def _drive_ceiling(self) -> None:
        s = self.scenario
        spec = s.ceiling
        self.ceiling = ctl = CeilingController(spec)
        deadline = time.time() + spec.max_duration_s
        self.phase = "ceiling"
        self.runner.start(ctl.users, spec.spawn_rate)
        added = spawned = ctl.users
        while not self.stop and time.time() < deadline:
            # measure once the added users have spawned and finished logging in, plus settle_s
            ramp_s = max(0, added) / spec.spawn_rate
            logins_due = time.time() + ramp_s + 30.0
            while self.writer.live.arrived < spawned and time.time() < logins_due:
                if not self._wait_until(min(logins_due, time.time() + 0.5)):
                    return
            measure_from = time.time() + spec.settle_s
            measure_to = measure_from + spec.interval_s
            if not self._wait_until(measure_to):
                return
            # every process's next batch (<= flush_s) holds the interval's last requests
            data_due = time.time() + 2 * record.FLUSH_INTERVAL_S
            while not self.writer.all_reported_since(measure_to + 0.2, self.n_workers):
                if time.time() > data_due or not self._wait_until(time.time() + 0.1):
                    break
            if self.stop:
                return
            verdicts = self._interval_verdicts(measure_from, measure_to)
            held = slo.all_held(verdicts)
            failing = [v["name"] for v in verdicts if v["passed"] is False]
            step = ctl.decide(held, failing)
            self.ceiling_log.append(
                {
                    "users": step.users,
                    "held": held,
                    "failing": failing,
                    "next_users": step.next_users,
                    "verdicts": verdicts,
                    "at": record.iso(record.utc_now()),
                }
            )
            log.info("ceiling: %s users %s", step.users, "held" if held else f"broke {failing}")
            if step.done:
                return
            added = step.next_users - step.users
            spawned += max(0, added)
            if added:
                self.runner.start(step.next_users, spec.spawn_rate)

    def _interval_verdicts(self, t_from: float, t_to: float) -> list[dict[str, Any]]:
        s = self.scenario
        live = self.writer.live
        exclude = tuple(s.slos.exclude)
        overall = live.window(t_from, t_to, exclude)
        login = live.window(t_from, t_to, only="POST /api/v4/users/login")
        client = {
            "p99_ms": overall["p99_ms"],
            "avg_ms": overall["avg_ms"],
            "error_rate": overall["error_rate"],
            "login_p99_ms": login["p99_ms"],
        }
        server = None
        if self.opts.prometheus:
            server = slo.server_measures(self.opts.prometheus, s.prometheus, t_to - t_from)
        return slo.evaluate(s.slos, client, server)

    # ---- shutdown ------------------------------------------------------------------------
    def _shutdown(self) -> None:
        self.phase = "stopping"
        runner = getattr(self, "runner", None)
        if runner is None:
            self._stop_worker_processes()
            return
        with contextlib.suppress(Exception):
            runner.stop()
        if self.n_workers:
            deadline = time.time() + STOP_TIMEOUT_S
            while len(self.done_workers) < self.n_workers and time.time() < deadline:
                if all(w.poll() is not None for w in self.workers):
                    break
                gevent.sleep(0.2)
        elif self.collector is not None:
            self.collector.stop()
        csv_greenlet = getattr(self, "csv_greenlet", None)
        if csv_greenlet is not None:
            csv_greenlet.kill(block=True)
            self._final_csv_rows()
        with contextlib.suppress(Exception):
            runner.quit()
        self._stop_worker_processes()
        self._record_missing_arrivals()

    def _record_missing_arrivals(self) -> None:
        """Scheduled users that were never spawned (the run ended first) are ``pending``."""
        plan = self._plan(0, "master")
        if not plan.schedule_users or plan.t0 is None:
            return
        self.writer.drain()
        table = record.read_table(self.run_dir, record.ARRIVALS, ["user", "phase"])
        seen = {
            u
            for u, ph in zip(*(table[c].to_pylist() for c in ("user", "phase")), strict=True)
            if ph in (None, "login")
        }
        missing = [
            {
                "user": plan.username(g),
                "scheduled": plan.arrival_time(g),
                "outcome": "pending",
                "phase": "login",
            }
            for g in range(plan.schedule_users)
            if plan.username(g) not in seen
        ]
        if missing:
            empty = {c: [] for c in (f.name for f in record.REQUEST_SCHEMA)}
            self.writer.ingest(
                {"worker": "master", "requests": empty, "arrivals": missing, "hdr": []}
            )

    def _final_csv_rows(self) -> None:
        """Write Locust's CSVs once more with the final statistics, then close them."""
        c = self.csv
        try:
            for fh, writer, columns, rows in (
                (
                    c.requests_csv_filehandle,
                    c.requests_csv_writer,
                    c.requests_csv_columns,
                    c._requests_data_rows,
                ),
                (
                    c.failures_csv_filehandle,
                    c.failures_csv_writer,
                    c.failures_columns,
                    c._failures_data_rows,
                ),
                (
                    c.exceptions_csv_filehandle,
                    c.exceptions_csv_writer,
                    c.exceptions_columns,
                    c._exceptions_data_rows,
                ),
            ):
                fh.seek(0)
                writer.writerow(columns)
                rows(writer)
                fh.truncate()
            c._stats_history_data_rows(c.stats_history_csv_writer, time.time())
        except Exception:  # Locust's private CSV API changed: keep what its loop wrote
            log.warning("could not write Locust's final CSV rows", exc_info=True)
        with contextlib.suppress(Exception):
            c.requests_flush()
            c.stats_history_flush()
            c.failures_flush()
            c.exceptions_flush()
            c.close_files()

    def _stop_worker_processes(self) -> None:
        for w in self.workers:
            try:
                w.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(w.pid, signal.SIGKILL)
                w.wait(timeout=5)
        for f in self.worker_logs:
            f.close()


def run_worker(
    master_host: str, master_port: int, locustfile: str | None = None, with_parent: bool = False
) -> None:
    """A worker process: connect to the master, take its plan, run users, ship batches.

    ``with_parent``: a local worker quits as soon as its master process is gone (e.g. SIGKILL),
    instead of waiting for Locust's heartbeat timeout.
    """
    classes = load_user_classes(locustfile)
    raise_open_files_limit(0)
    env = Environment(user_classes=classes, events=events)
    runner = env.create_worker_runner(master_host, master_port)
    state: dict[str, Any] = {}

    def on_plan(msg: Any, **_: Any) -> None:
        plan = Plan.from_message(msg.data)
        env.mmload_plan = plan
        collector = Collector(
            env, plan.worker_name, lambda b: runner.send_message(BATCH_MESSAGE, b), plan.flush_s
        )
        env.mmload_collector = collector
        state["collector"] = collector
        collector.start()

    def on_test_stop(**_: Any) -> None:
        collector = state.get("collector")
        if collector is not None:
            collector.stop()
            runner.send_message(DONE_MESSAGE, {"worker": collector.worker})

    runner.register_message(PLAN_MESSAGE, on_plan)
    env.events.test_stop.add_listener(on_test_stop)
    for sig in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(sig, runner.quit)
    if with_parent:
        parent = os.getppid()

        def watch_parent() -> None:
            while os.getppid() == parent:
                gevent.sleep(1.0)
            runner.quit()

        gevent.spawn(watch_parent)
    runner.greenlet.join()
