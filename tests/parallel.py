"""Run the whole suite as N plain pytest processes ("shards") side by side: `make test`.

Why not pytest-xdist: Locust monkey-patches ``threading`` with gevent when it is imported; in an
xdist worker the execnet I/O thread already exists, and the worker's main loop then waits on a
gevent lock nobody can release (``gevent.exceptions.LoopExit``, the whole run is an internal
error). A shard is an ordinary pytest session, exactly like a serial run.

Modules are spread over the shards longest first (LPT) from ``tests/durations.json``; a module not
in it counts as ``DEFAULT_SECONDS``. The modules that run playbooks against this machine itself
(``THIS_MACHINE``) share system users and files, so they stay in one shard, one after another.
``--record`` rewrites the durations file from this run's own timings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
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
)


@dataclass
class Shard:
    """One pytest process and the modules it runs."""

    index: int
    modules: list[str] = field(default_factory=list)
    expected_s: float = 0.0
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    timings: Path | None = None
    started: float = 0.0
    elapsed_s: float = 0.0


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


def plan_shards(modules: list[str], jobs: int, durations: dict[str, float]) -> list[Shard]:
    """Longest unit first onto the shard with the least expected time."""
    shards = [Shard(i + 1) for i in range(jobs)]

    def cost(unit: list[str]) -> float:
        return sum(durations.get(m, DEFAULT_SECONDS) for m in unit)

    for unit in sorted(units_of(modules), key=cost, reverse=True):
        target = min(shards, key=lambda s: s.expected_s)
        target.modules.extend(unit)
        target.expected_s += cost(unit)
    return [s for s in shards if s.modules]


def start(shard: Shard, workdir: Path, extra: list[str]) -> None:
    """Launch the shard's pytest, output to its own log, timings to its own JSON."""
    shard.log = workdir / f"shard-{shard.index}.log"
    shard.timings = workdir / f"shard-{shard.index}.json"
    env = {**os.environ, "MMLOAD_TEST_TIMINGS": str(shard.timings)}
    cmd = [sys.executable, "-m", "pytest", "-q", *extra, *shard.modules]
    with shard.log.open("wb") as out:
        shard.process = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    shard.started = time.monotonic()


def last_line(path: Path) -> str:
    """The shard's pytest summary line (its last non-empty line)."""
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def wait_all(shards: list[Shard]) -> None:
    """Wait for every shard, one line when each ends, a progress line every minute."""
    running = list(shards)
    next_progress = time.monotonic() + PROGRESS_EVERY_S
    while running:
        for shard in list(running):
            assert shard.process is not None and shard.log is not None
            if shard.process.poll() is None:
                continue
            shard.elapsed_s = time.monotonic() - shard.started
            running.remove(shard)
            print(
                f"tests: shard {shard.index} done in {shard.elapsed_s:.0f} s "
                f"(exit {shard.process.returncode}): {last_line(shard.log)}",
                flush=True,
            )
        if running and time.monotonic() >= next_progress:
            names = ", ".join(f"{s.index} ({time.monotonic() - s.started:.0f} s)" for s in running)
            print(f"tests: shards still running: {names}", flush=True)
            next_progress += PROGRESS_EVERY_S
        time.sleep(0.5)


def stop_all(shards: list[Shard]) -> None:
    """Terminate any shard still running (Ctrl-C, an error in this runner), by its pid."""
    for shard in shards:
        if shard.process is not None and shard.process.poll() is None:
            shard.process.terminate()
    for shard in shards:
        if shard.process is not None:
            try:
                shard.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                shard.process.kill()
                shard.process.wait()


def record(shards: list[Shard]) -> None:
    """Merge the shards' per-module timings into tests/durations.json."""
    merged: dict[str, float] = {}
    for shard in shards:
        if shard.timings is not None and shard.timings.is_file():
            merged.update(json.loads(shard.timings.read_text()))
    DURATIONS.write_text(json.dumps(dict(sorted(merged.items())), indent=1) + "\n")
    print(f"tests: recorded {len(merged)} module durations in {DURATIONS.relative_to(REPO)}")


def report(shards: list[Shard]) -> int:
    """Print every shard's output (failures in full) and return the suite's exit code."""
    code = 0
    for shard in shards:
        assert shard.process is not None and shard.log is not None
        rc = shard.process.returncode
        print(f"\n===== shard {shard.index}: {len(shard.modules)} modules, exit {rc} =====")
        print(shard.log.read_text(errors="replace").rstrip())
        if rc != 0 and code == 0:
            code = rc
    total = sum(s.elapsed_s for s in shards)
    print(f"\ntests: {len(shards)} shards, {total:.0f} s of shard time, exit {code}")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-j", "--jobs", type=int, default=3, help="pytest processes (default 3)")
    parser.add_argument("--record", action="store_true", help="rewrite tests/durations.json")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for every shard's pytest")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("argument -j/--jobs: must be at least 1")
    shards = plan_shards(discover_modules(), args.jobs, load_durations())
    for shard in shards:
        print(
            f"tests: shard {shard.index}: {len(shard.modules)} modules, ~{shard.expected_s:.0f} s"
        )
    with tempfile.TemporaryDirectory(prefix="mmload-tests-") as tmp:
        try:
            for shard in shards:
                start(shard, Path(tmp), args.pytest_args)
            wait_all(shards)
        except KeyboardInterrupt:
            print("tests: interrupted, stopping the shards", flush=True)
            stop_all(shards)
            report(shards)
            return 130
        finally:
            stop_all(shards)
        if args.record:
            record(shards)
        return report(shards)


if __name__ == "__main__":
    sys.exit(main())
