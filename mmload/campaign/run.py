"""`mmload campaign run`: the plan's runs, up to ``concurrency`` deployments at once, resumable.

Each deployment (a thread here) brings up its target for a version — for the simulator,
`mmload sim` with the version's profile at the architecture's size; with reused deployments the
next version restarts it with that version's profile, the simulator's in-place upgrade — runs
that version's pending runs one after the other through the load engine (`mmload run`, a
subprocess: Locust's monkey-patching stays out of this process), and stops it, also on failure.
Every step goes into the state file (``state.py``); run again, the campaign continues after
the last finished run. SIGINT/SIGTERM stop the runs in progress (their records say
``interrupted``) and the simulators; a SIGKILL leaves no process (they die with their thread).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mmload import record
from mmload.campaign.plan import Plan, PlannedDeployment, Run
from mmload.campaign.simtarget import sim_deployment
from mmload.campaign.state import DONE, State, now_iso, open_state
from mmload.errors import RunFailed, UserError
from mmload.sim.launcher import die_with_parent, mmload_executable, read_lines

POLL_S = 0.5


def run_key(run: Run) -> str:
    """``architecture/version/<scenario #>-<scenario>/<repeat>``: a run's name and folder."""
    return f"{run.architecture}/{run.version}/{run.test.index + 1}-{run.test.name}/{run.repeat}"


def run_entry(run: Run) -> dict[str, Any]:
    """A new run's state entry."""
    return {
        "deployment": run.deployment,
        "architecture": run.architecture,
        "version": run.version,
        "scenario": run.test.name,
        "kind": run.test.kind,
        "users": run.test.users,
        "repeat": run.repeat,
        "status": "pending",
        "attempts": 0,
        "record": None,
        "outcome": None,
        "supported_users": None,
        "error": None,
    }


def run_command(run: Run, url: str, folder: Path) -> list[str]:
    """`mmload run` for one run of the plan (the SLOs judge the ceiling, not the exit code)."""
    cmd = [*mmload_executable(), "run", run.test.ref, "--target", url, "--out", str(folder)]
    cmd += ["--label", run.version, "--architecture", run.architecture, "--no-fail-on-slo"]
    if run.test.kind == "comparison" and run.test.users is not None:
        cmd += ["--users", str(run.test.users)]
    if run.test.duration_given is not None:
        cmd += ["--duration", f"{run.test.duration_given:g}"]
    return cmd


def record_in(folder: Path) -> Path | None:
    """The run record `mmload run --out folder` wrote (the folder holding run.json)."""
    found = sorted(p.parent for p in folder.glob(f"*/{record.RUN_JSON}"))
    return found[-1] if found else None


@contextmanager
def campaign_lock(out: Path) -> Iterator[None]:
    """One `campaign run` per output folder at a time."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".campaign.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                "another `mmload campaign run` is running into it", source=str(out)
            ) from None
        yield


class CampaignRun:
    """One invocation of `campaign run`: resume the state, run what is left, record it all."""

    def __init__(self, plan: Plan, say: Callable[[str], None]) -> None:
        self.plan, self.say = plan, say
        self.out = plan.output_dir
        self.stop = threading.Event()
        self.active: set[subprocess.Popen] = set()
        self.active_lock = threading.Lock()
        self.state: State | None = None

    # -- the whole campaign ---------------------------------------------------------------------

    def execute(self) -> str:
        """Run what is left; returns ``finished``, ``failed`` or ``interrupted``."""
        with campaign_lock(self.out):
            state = open_state(self.out, self.plan.campaign.name, Path(self.plan.source))
            self.state = state
            self.register(state)
            todo = [d for d in self.plan.deployments if self.pending(d.runs)]
            done = len(self.plan.runs) - sum(len(self.pending(d.runs)) for d in todo)
            self.say(
                f"campaign {self.plan.campaign.name}: {done} of {len(self.plan.runs)} runs "
                f"finished; state: {state.path}"
            )
            state.set(status="running", pid=os.getpid())
            k = self.plan.campaign.concurrency
            state.event(f"run: {len(todo)} deployment(s) to go, up to {k} at once")
            with ThreadPoolExecutor(self.plan.campaign.concurrency) as pool:
                futures = [pool.submit(self.deployment, d) for d in todo]
                while wait(futures, timeout=POLL_S).not_done:
                    pass
            status = self.final_status()
            errors = [f.exception() for f in futures if f.exception() is not None]
            if errors:  # not a failed run: a fault of the campaign itself, said as it is
                status = "failed"
                state.event(f"campaign fault: {errors[0]!r}")
            state.set(status=status, pid=None, ended_at=now_iso())
            state.event(f"campaign {status}")
            if errors:
                raise errors[0]
            return status

    def register(self, state: State) -> None:
        """Every planned run and deployment has an entry (new ones pending)."""
        with state.lock:
            for run in self.plan.runs:
                state.data["runs"].setdefault(run_key(run), run_entry(run))
            for d in self.plan.deployments:
                state.data["deployments"].setdefault(
                    d.name,
                    {
                        "architecture": d.architecture.label,
                        "status": "pending",
                        "version": None,
                        "usd_per_hour": d.usd_per_hour,
                        "spans": [],
                    },
                )
            state.save()

    def pending(self, runs: list[Run]) -> list[Run]:
        """The runs not finished yet."""
        assert self.state is not None
        return [r for r in runs if self.state.run(run_key(r))["status"] != DONE]

    def final_status(self) -> str:
        """finished when every run is; interrupted when stopped; else failed."""
        assert self.state is not None
        statuses = {e["status"] for e in self.state.data["runs"].values()}
        if statuses == {DONE}:
            return DONE
        return "interrupted" if self.stop.is_set() else "failed"

    def interrupt(self) -> None:
        """Stop: no new run starts; the runs in progress get SIGINT (they keep their data)."""
        self.stop.set()
        with self.active_lock:
            for proc in self.active:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)

    # -- one deployment -------------------------------------------------------------------------

    def deployment(self, d: PlannedDeployment) -> None:
        """Its versions one after the other: the target up, the version's pending runs, down."""
        assert self.state is not None
        for version in d.versions:
            runs = self.pending([r for r in d.runs if r.version == version])
            if not runs or self.stop.is_set():
                continue
            try:
                with self.target(d, version) as url:
                    for run in runs:
                        if self.stop.is_set():
                            break
                        self.one_run(run, url)
            except (RunFailed, UserError, OSError) as exc:
                self.state.update_deployment(d.name, f"{d.name}: failed: {exc}", status="failed")
                self.say(f"{d.name}: failed: {exc}")
                for run in runs:
                    if self.state.run(run_key(run))["status"] not in (DONE, "interrupted"):
                        self.state.update_run(run_key(run), status="failed", error=str(exc))

    @contextmanager
    def target(self, d: PlannedDeployment, version: str) -> Iterator[str]:
        """The simulator at the architecture's size with the version's profile (its URL)."""
        assert self.state is not None
        entry = self.state.data["deployments"][d.name]
        step = "restart with" if entry.get("version") else "start with"
        self.state.update_deployment(
            d.name, f"{d.name}: {step} {version}", status="starting", version=version
        )
        profile = self.plan.profiles[(d.architecture.label, version)]
        stem = f"{d.name}-{version}"
        try:
            with sim_deployment(d.architecture, profile, self.out / "logs", stem) as sim:
                with self.state.lock:
                    entry["spans"].append([time.time(), None])
                self.state.update_deployment(
                    d.name,
                    f"{d.name}: up at {sim.url}",
                    status="up",
                    url=sim.url,
                    pid=sim.process.pid,
                )
                yield sim.url
        finally:
            with self.state.lock:
                if entry["spans"] and entry["spans"][-1][1] is None:
                    entry["spans"][-1][1] = time.time()
            if entry["status"] != "failed":
                self.state.update_deployment(d.name, f"{d.name}: stopped", status="down", pid=None)

    # -- one run --------------------------------------------------------------------------------

    def one_run(self, run: Run, url: str) -> None:
        """`mmload run` for ``run``; its record and outcome into the state."""
        assert self.state is not None
        key = run_key(run)
        entry = self.state.run(key)
        folder = self.out / "runs" / key
        if folder.exists():  # an earlier attempt, interrupted: kept aside, not counted
            aside = self.out / "interrupted" / key / f"attempt-{entry['attempts']}"
            aside.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(folder), str(aside))
        folder.mkdir(parents=True)
        log = self.out / "logs" / (key.replace("/", "_") + ".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        self.state.update_run(
            key,
            f"{key}: started",
            status="running",
            attempts=entry["attempts"] + 1,
            started_at=now_iso(),
            error=None,
        )
        self.say(f"{key}: started")
        with log.open("wb") as handle:
            proc = subprocess.Popen(
                run_command(run, url, folder),
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a terminal's Ctrl-C reaches it through us only
                preexec_fn=die_with_parent,
            )
        with self.active_lock:
            self.active.add(proc)
        if self.stop.is_set():
            proc.send_signal(signal.SIGINT)
        self.state.update_run(key, pid=proc.pid)
        code = proc.wait()
        with self.active_lock:
            self.active.discard(proc)
        self.finish_run(key, folder, code, log)

    def finish_run(self, key: str, folder: Path, code: int, log: Path) -> None:
        """The run's status from its record: finished (completed), interrupted, or failed."""
        assert self.state is not None
        rec = record_in(folder)
        meta = record.read_meta(rec) if rec else None
        outcome = meta.outcome if meta else None
        if outcome == "completed" and code == 0:
            status, error = DONE, None
        elif outcome == "interrupted" or code == 130 or self.stop.is_set():
            status, error = "interrupted", f"exit {code}"
        else:
            last = " | ".join(read_lines(log)[-3:]) or "no output"
            status, error = "failed", f"exit {code}, outcome {outcome}: {last}"[:500]
        fields = {
            "status": status,
            "record": str(rec.relative_to(self.out)) if rec else None,
            "outcome": outcome,
            "supported_users": meta.supported_users if meta else None,
            "error": error,
            "pid": None,
            "finished_at": now_iso(),
        }
        users = f", supported users {fields['supported_users']}" if status == DONE else ""
        self.state.update_run(key, f"{key}: {status}{users}", **fields)
        self.say(f"{key}: {status}{users}" + (f" ({error})" if error else ""))
