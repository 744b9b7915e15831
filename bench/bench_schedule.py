"""Schedule accuracy: 1,500 logins over 90 s against a sim whose every request takes >= 300 ms.

Runs the real `mmload run` (a `storm` scenario: open-model arrivals, no action mix, WebSocket on)
against `mmload sim` started with a profile file whose worker pool holds every HTTP request for
`--login-ms` (300 ms) with enough slots that nothing queues: the login, and every other call of
the web app's initial load, is slow, as on a struggling server. An open model must still start each
user at its scheduled time. From the run record's `arrivals` table we count, per 10 s window, the
users whose login actually started in the window and compare with the users scheduled in it.
Target: every window within +-2 % of the schedule.

    python bench/bench_schedule.py                       # full size: 1,500 users over 90 s
    python bench/bench_schedule.py --users 60 --arrival-s 6 --window-s 2   # smoke
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

GENERATOR_CPU = 0
SIM_CPU = 1
LOGIN_NAME = "POST /api/v4/users/login"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1500)
    parser.add_argument("--arrival-s", type=float, default=90.0)
    parser.add_argument("--window-s", type=float, default=10.0)
    parser.add_argument("--login-ms", type=float, default=300.0, help="sim service time")
    parser.add_argument("--tolerance", type=float, default=0.02, help="allowed deviation")
    parser.add_argument("--hold-s", type=float, default=10.0, help="after the last arrival")
    return parser.parse_args(argv)


def write_inputs(workdir: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """The sim's slow profile and the storm scenario, as files (what a user would write)."""
    profile = workdir / "slow-login.yaml"
    profile.write_text(
        "description: every HTTP request held for the login time, never queued (bench)\n"
        "worker_pool:\n"
        "  size: 5000\n"
        f"  service_ms: {args.login_ms}\n"
    )
    scenario = workdir / "bench-schedule.yaml"
    scenario.write_text(
        "name: bench-schedule\n"
        "description: schedule-accuracy benchmark (open-model arrivals, slow server)\n"
        "kind: storm\n"
        f"users: {args.users}\n"
        f"arrival_s: {args.arrival_s}\n"
        f"hold_s: {args.hold_s}\n"
        "actions: false\n"
    )
    return profile, scenario


def run_storm(
    procs: common.Processes, scenario: Path, target: str, out: Path, args: argparse.Namespace
) -> Path:
    """Run `mmload run` pinned to the generator core; return the run directory it created."""
    command = [str(common.BIN / "mmload"), "run", str(scenario), "--target", target]
    command += ["--out", str(out)]
    run = procs.start("mmload-run", command, cpus=common.core(GENERATOR_CPU))
    budget = args.arrival_s + args.hold_s + 180
    try:
        run.popen.wait(budget)
    except Exception as exc:
        raise RuntimeError(f"mmload run did not finish within {budget:.0f} s") from exc
    finally:
        run.stop()
    run_dirs = [p for p in out.iterdir() if (p / "run.json").exists()]
    if run.popen.returncode not in (0, 1) or len(run_dirs) != 1:
        raise RuntimeError(f"mmload run failed (exit {run.popen.returncode}):\n{run.tail()}")
    return run_dirs[0]


def window_counts(times_s: list[float], window_s: float, windows: int) -> list[int]:
    """How many of `times_s` (seconds from the first scheduled arrival) fall in each window."""
    counts = [0] * windows
    for t in times_s:
        k = math.floor(t / window_s)
        if 0 <= k < windows:
            counts[k] += 1
        elif k >= windows:
            counts[-1] += 1  # a start after the last window's end still belongs to the schedule
    return counts


def per_window(arrivals: list[dict], args: argparse.Namespace) -> list[dict]:
    """Scheduled vs started users in each window; deviation = (started - scheduled)/scheduled."""
    t0 = min(a["scheduled"] for a in arrivals)
    windows = max(1, math.ceil(args.arrival_s / args.window_s))
    scheduled = window_counts(
        [(a["scheduled"] - t0).total_seconds() for a in arrivals], args.window_s, windows
    )
    started = window_counts(
        [(a["started"] - t0).total_seconds() for a in arrivals if a["started"] is not None],
        args.window_s,
        windows,
    )
    ideal = args.users * args.window_s / args.arrival_s
    rows = []
    for k in range(windows):
        deviation = (started[k] - scheduled[k]) / scheduled[k] if scheduled[k] else None
        rows.append(
            {
                "window_start_s": k * args.window_s,
                "scheduled": scheduled[k],
                "started": started[k],
                "deviation": None if deviation is None else round(deviation, 4),
                "scheduled_vs_uniform": round((scheduled[k] - ideal) / ideal, 4),
            }
        )
    return rows


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, math.ceil(q * len(values)) - 1)]


def login_latency_ms(run_dir: Path) -> dict:
    """Service time of the login call, to show the slow profile was in effect."""
    from mmload import record

    table = record.read_table(run_dir, "requests", columns=["name", "latency_ms"]).to_pydict()
    pairs = zip(table["name"], table["latency_ms"], strict=True)
    values = [latency for name, latency in pairs if name == LOGIN_NAME]
    return {
        "count": len(values),
        "p50": round(statistics.median(values), 1) if values else None,
        "min": round(min(values), 1) if values else None,
    }


def analyse(run_dir: Path, args: argparse.Namespace) -> dict:
    """The benchmark's figures from the run record."""
    from mmload import record

    arrivals = record.read_table(run_dir, "arrivals").to_pylist()
    if not arrivals:
        raise RuntimeError(f"the run record {run_dir} has no arrivals")
    rows = per_window(arrivals, args)
    deviations = [abs(r["deviation"]) for r in rows if r["deviation"] is not None]
    lags = [a["lag_ms"] for a in arrivals if a["lag_ms"] is not None]
    outcomes: dict[str, int] = {}
    for a in arrivals:
        outcomes[a["outcome"]] = outcomes.get(a["outcome"], 0) + 1
    worst = max(deviations) if deviations else None
    meta = record.read_run(run_dir)
    return {
        "windows": rows,
        "worst_window_deviation": worst,
        "arrivals": len(arrivals),
        "started": sum(1 for a in arrivals if a["started"] is not None),
        "outcomes": outcomes,
        "lag_ms": {
            "p50": percentile(lags, 0.5),
            "p99": percentile(lags, 0.99),
            "max": max(lags) if lags else None,
        },
        "login_latency_ms": login_latency_ms(run_dir),
        "run_outcome": meta.get("outcome"),
        "met": (
            worst is not None
            and worst <= args.tolerance
            and len(arrivals) == args.users
            and all(r["scheduled"] for r in rows)
        ),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="mmload-bench-schedule-") as tmp,
        common.stop_on_sigterm(),
        common.Processes(Path(tmp)) as procs,
    ):
        workdir = Path(tmp)
        profile, scenario = write_inputs(workdir, args)
        profile_args = ["--profile-file", str(profile)]
        sim = common.start_sim(procs, "sim", cpus=common.core(SIM_CPU), extra_args=profile_args)
        common.log(f"sim at {sim.url} (every request >= {args.login_ms:.0f} ms)")
        common.log(f"mmload run: {args.users} users over {args.arrival_s:.0f} s")
        run_dir = run_storm(procs, scenario, sim.url, workdir / "runs", args)
        result = analyse(run_dir, args)
    worst = result["worst_window_deviation"]
    result.update(
        benchmark="schedule",
        users=args.users,
        arrival_s=args.arrival_s,
        window_s=args.window_s,
        sim_request_ms=args.login_ms,
        target={"every_window_abs_deviation": f"<= {args.tolerance}"},
        shortfall=None if worst is None else round(max(0.0, worst - args.tolerance), 4),
        wall_seconds=round(time.monotonic() - started, 1),
    )
    common.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(common.guarded("schedule", main))
