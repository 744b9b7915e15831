"""Run the whole suite as plain pytest processes side by side, one per test module: `make test`.

Why not pytest-xdist: Locust monkey-patches ``threading`` with gevent when it is imported; in an
xdist worker the execnet I/O thread already exists, and the worker's main loop then waits on a
gevent lock nobody can release (``gevent.exceptions.LoopExit``, the whole run is an internal
error). Why one process per module: that patching also leaks from a module that imports Locust
into every later module of the same process (asyncio clients in threads then see one event loop,
ssl imported first recurses), so a module runs as it runs alone.

``--jobs`` processes at a time, the longest modules first (expected seconds from
``tests/durations.json``; a module not in it counts as ``DEFAULT_SECONDS``). The modules that run
playbooks against this machine itself (``THIS_MACHINE``) share system users and files: they run
in one process, one after another. The modules that drive real Locust runs to a timing or an
SLO verdict (``TIMING``) never run two at a time, so a 2-core machine is not oversubscribed by
them. ``--record`` rewrites the durations file from this run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DURATIONS = REPO / "tests" / "durations.json"
DEFAULT_SECONDS = 20.0
PROGRESS_EVERY_S = 60.0

THIS_MACHINE = (
    "tests/configure/test_converge.py",
    "tests/configure/test_tls.py",
    "tests/configure/test_failures.py",
    "tests/configure/test_templates.py",
    "tests/configure/test_from_provisioning.py",
    "tests/configure/test_inventory.py",
    "tests/configure/test_scale.py",
)

# Real Locust runs judged on latency, schedule or capacity: at most one of them at a time.
TIMING = frozenset(
    {
        "tests/bench/test_bench_smoke.py",
        "tests/campaign/test_run.py",
        "tests/lifecycle/test_load_existing_target.py",
        "tests/lifecycle/test_load_remote.py",
        "tests/load/test_abort_run.py",
        "tests/load/test_ceiling_run.py",
        "tests/load/test_ctrl_c.py",
        "tests/load/test_disk_full.py",
        "tests/load/test_login_methods.py",
        "tests/load/test_distributed_and_prometheus.py",
        "tests/load/test_open_model.py",
        "tests/load/test_replay_run.py",
        "tests/load/test_runs.py",
        "tests/load/test_verdicts.py",
        "tests/load/test_webapp_flow.py",
        "tests/load/test_worker_sources.py",
        "tests/report/test_engine_reports.py",
    }
)


@dataclass
class Job:
    """One pytest process and the module(s) it runs."""

    index: int
    modules: list[str]
    expected_s: float
    log: Path
    timings: Path
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    elapsed_s: float = 0.0

    @property
    def timing(self) -> bool:
        return any(m in TIMING for m in self.modules)

    @property
    def name(self) -> str:
        return self.modules[0] if len(self.modules) == 1 else f"{len(self.modules)} modules"


def discover_modules() -> list[str]:
    """Every test module under tests/, as repo-relative paths."""
    return sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("test_*.py"))


def units_of(modules: list[str]) -> list[list[str]]:
    """Scheduling units: this machine's modules together, every other module alone."""
    together = [m for m in THIS_MACHINE if m in modules]
    alone = [[m] for m in modules if m not in THIS_MACHINE]
    return ([together] if together else []) + alone


def load_durations() -> dict[str, float]:
    """Seconds per module from the last recorded run (empty when there is none)."""
    try:
        return {str(k): float(v) for k, v in json.loads(DURATIONS.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def plan_jobs(modules: list[str], durations: dict[str, float], workdir: Path) -> list[Job]:
    """One job per unit, the longest expected first."""

    def cost(unit: list[str]) -> float:
        return sum(durations.get(m, DEFAULT_SECONDS) for m in unit)

    units = sorted(units_of(modules), key=cost, reverse=True)
    return [
        Job(i, unit, cost(unit), workdir / f"job-{i}.log", workdir / f"job-{i}.json")
        for i, unit in enumerate(units)
    ]


def start(job: Job, extra: list[str]) -> None:
    """Launch the job's pytest, output to its own log, timings to its own JSON."""
    env = {**os.environ, "MMLOAD_TEST_TIMINGS": str(job.timings)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, *job.modules]
    with job.log.open("wb") as out:
        job.process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    job.started = time.monotonic()


def last_line(path: Path) -> str:
    """The job's pytest summary line (its last non-empty line)."""
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def next_job(waiting: list[Job], running: list[Job]) -> Job | None:
    """The job to start now: the longest waiting timing-judged one when none runs (their lane,
    one at a time, is the suite's critical path: it must never wait behind other modules), else
    the longest waiting other one."""
    if not any(j.timing for j in running):
        timing = next((j for j in waiting if j.timing), None)
        if timing is not None:
            return timing
    return next((j for j in waiting if not j.timing), None)


def run_all(jobs: list[Job], slots: int, extra: list[str]) -> None:
    """At most ``slots`` jobs at a time, one line when each ends, a progress line a minute."""
    waiting, running, done = list(jobs), [], 0
    next_progress = time.monotonic() + PROGRESS_EVERY_S
    while waiting or running:
        while len(running) < slots and (job := next_job(waiting, running)) is not None:
            waiting.remove(job)
            start(job, extra)
            running.append(job)
        for job in [j for j in running if j.process is not None and j.process.poll() is not None]:
            job.elapsed_s = time.monotonic() - job.started
            running.remove(job)
            done += 1
            assert job.process is not None
            rc = job.process.returncode
            print(
                f"tests: [{done}/{len(jobs)}] {job.name}: {job.elapsed_s:.0f} s, exit {rc}: "
                f"{last_line(job.log)}",
                flush=True,
            )
        now = time.monotonic()
        if running and now >= next_progress:
            names = ", ".join(f"{j.name} ({now - j.started:.0f} s)" for j in running)
            print(f"tests: running {names}; {len(waiting)} waiting", flush=True)
            next_progress = now + PROGRESS_EVERY_S
        time.sleep(0.2)


def stop_all(jobs: list[Job]) -> None:
    """Terminate any job still running (Ctrl-C, an error in this runner), by its pid."""
    alive = [j.process for j in jobs if j.process is not None and j.process.poll() is None]
    for process in alive:
        process.terminate()
    for process in alive:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def record(jobs: list[Job]) -> None:
    """Merge the jobs' per-module timings into tests/durations.json."""
    merged = load_durations()
    for job in jobs:
        if job.timings.is_file():
            merged.update(json.loads(job.timings.read_text()))
    DURATIONS.write_text(json.dumps(dict(sorted(merged.items())), indent=1) + "\n")
    print(f"tests: recorded {len(merged)} module durations in {DURATIONS.relative_to(REPO)}")


def report(jobs: list[Job], wall_s: float) -> int:
    """Print the output of every job that did not pass, a total line, and the exit code."""
    failed = [j for j in jobs if j.process is None or j.process.returncode != 0]
    for job in failed:
        rc = None if job.process is None else job.process.returncode
        print(f"\n===== {' '.join(job.modules)}: exit {rc} =====")
        print(job.log.read_text(errors="replace").rstrip() if job.log.exists() else "(not run)")
    ran = [j for j in jobs if j.process is not None]
    cpu = sum(j.elapsed_s for j in ran)
    code = 0 if not failed else 1
    print(
        f"\ntests: {len(ran) - len(failed)} of {len(jobs)} modules passed in {wall_s:.0f} s "
        f"({cpu:.0f} s of module time); exit {code}"
    )
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-j", "--jobs", type=int, default=3, help="processes at once (3)")
    parser.add_argument("--record", action="store_true", help="rewrite tests/durations.json")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for every pytest")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("argument -j/--jobs: must be at least 1")
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mmload-tests-") as tmp:
        jobs = plan_jobs(discover_modules(), load_durations(), Path(tmp))
        expected = sum(j.expected_s for j in jobs)
        print(f"tests: {len(jobs)} jobs, ~{expected:.0f} s of module time, {args.jobs} at once")
        try:
            run_all(jobs, args.jobs, args.pytest_args)
        except KeyboardInterrupt:
            print("tests: interrupted, stopping the running modules", flush=True)
            stop_all(jobs)
            report(jobs, time.monotonic() - began)
            return 130
        finally:
            stop_all(jobs)
        if args.record:
            record(jobs)
        return report(jobs, time.monotonic() - began)


if __name__ == "__main__":
    sys.exit(main())
