"""Generator efficiency: authenticated MattermostUser requests/s on ONE core, side by side.

Three generators hit the same cheap endpoint (`GET /api/v4/users/me`, authenticated) of the same
`mmload sim`, one after the other, in several interleaved rounds:

- `mattermost`: mmload's `MattermostUser` (logged in like the web app, WebSocket open with its
  30 s ping), looping on the endpoint with no wait time;
- `bare`: the fairest Locust baseline — a bare `FastHttpUser` that logs in with one POST, then
  loops on the same endpoint with a fixed `Authorization: Bearer` header and no cookie jar;
- `wrk`: the C load generator with one thread — the limit of what the sim can serve.

Each generator is pinned to one core (taskset) and the sim to the other. Besides requests/s we
report requests per generator CPU-second, which stays a fair measure of generator cost even when
the sim (not the generator) is the bottleneck. Target: mattermost >= 0.85 x bare in requests
per generator CPU-second.

    python bench/bench_generator.py            # full size: 3 rounds x 20 s per generator
    python bench/bench_generator.py --rounds 1 --seconds 3 --warmup 2 --users 8   # smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

ENDPOINT = "/api/v4/users/me"
ENDPOINT_NAME = f"GET {ENDPOINT}"
TARGET_RATIO = 0.85
GENERATOR_CPU = 0
SIM_CPU = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5, help="seconds before measuring")
    parser.add_argument("--users", type=int, default=50, help="Locust users (and wrk connections)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also run MattermostUser without mmload's recorder, the bare user with Locust's"
        " cookie jar left on, and the bare user with the web app's cookie authentication"
        " (where MattermostUser's cost goes)",
    )
    parser.add_argument(
        "--child",
        choices=["bare", "mattermost", "mattermost-norecord", "bare-jar", "bare-cookies"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--host", help=argparse.SUPPRESS)
    parser.add_argument("--user-offset", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- child process
def run_child(args: argparse.Namespace) -> None:
    """Run one Locust generator in this process and print what it measured as JSON."""
    import _users  # imports locust (and gevent's monkey patching) only in the child

    with tempfile.TemporaryDirectory(prefix="mmload-bench-gen-run-") as workdir:
        user_class, setup = _users.generator_setup(
            args.child, args.host, args.user_offset, args.users, workdir
        )
        result = _users.measure_local_runner(
            user_class, setup, args.users, args.warmup, args.seconds, ENDPOINT_NAME
        )
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------- parent process
def run_locust_generator(
    procs: common.Processes, kind: str, host: str, args: argparse.Namespace, offset: int
) -> dict:
    """Run a Locust generator child pinned to the generator core; return its measurements."""
    command = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--host",
        host,
        "--users",
        str(args.users),
        "--warmup",
        str(args.warmup),
        "--seconds",
        str(args.seconds),
        "--user-offset",
        str(offset),
    ]
    child = procs.start(
        f"gen-{kind}-{offset}", command, cpus=common.core(GENERATOR_CPU), stdout_pipe=True
    )
    try:
        out, _ = child.popen.communicate(timeout=args.warmup + args.seconds + 120)
    finally:
        child.stop()
    lines = [line for line in (out or "").splitlines() if line.startswith("{")]
    if child.popen.returncode != 0 or not lines:
        code = child.popen.returncode
        raise RuntimeError(f"{kind} generator failed (exit {code}):\n{child.tail()}")
    result = json.loads(lines[-1])
    if "error" in result:
        raise RuntimeError(f"the {kind} generator failed: {result['error']}")
    if not result["requests"]:
        raise RuntimeError(f"the {kind} generator made no request:\n{child.tail(30)}")
    return result


def run_wrk_generator(host: str, token: str, args: argparse.Namespace) -> dict:
    """wrk on the same endpoint with the same token, for `warmup + seconds` (wrk has no warmup)."""
    result = common.run_wrk(
        host + ENDPOINT,
        seconds=max(1, round(args.seconds)),
        connections=args.users,
        cpus=common.core(GENERATOR_CPU),
        headers={"Authorization": f"Bearer {token}"},
    )
    return {"rps": result["rps"], "requests": result["requests"], "failures": result["non_2xx"]}


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Median of each generator's rounds, and the ratios the target is judged on."""
    summary: dict = {}
    for kind, results in runs.items():
        entry = {"rps_median": round(statistics.median(r["rps"] for r in results), 1)}
        entry["rps_rounds"] = [round(r["rps"], 1) for r in results]
        entry["failures"] = sum(r.get("failures", 0) for r in results)
        if all("rps_per_cpu_second" in r for r in results):
            per_cpu = statistics.median(r["rps_per_cpu_second"] for r in results)
            entry["rps_per_cpu_second_median"] = round(per_cpu, 1)
            entry["cpu_utilisation_median"] = round(
                statistics.median(r["cpu_utilisation"] for r in results), 3
            )
        summary[kind] = entry
    mm, bare, wrk = summary["mattermost"], summary["bare"], summary["wrk"]
    norecord, cookies = summary.get("mattermost-norecord"), summary.get("bare-cookies")
    jar = summary.get("bare-jar")
    ratios = {
        "mattermost_vs_bare_rps": round(mm["rps_median"] / bare["rps_median"], 3),
        "mattermost_vs_bare_rps_per_cpu_second": round(
            mm["rps_per_cpu_second_median"] / bare["rps_per_cpu_second_median"], 3
        ),
        "bare_vs_wrk_rps": round(bare["rps_median"] / wrk["rps_median"], 3),
        "mattermost_vs_wrk_rps": round(mm["rps_median"] / wrk["rps_median"], 3),
    }
    if norecord:
        ratios["mattermost_norecord_vs_bare_rps_per_cpu_second"] = round(
            norecord["rps_per_cpu_second_median"] / bare["rps_per_cpu_second_median"], 3
        )
    if jar:
        ratios["bare_jar_vs_bare_rps_per_cpu_second"] = round(
            jar["rps_per_cpu_second_median"] / bare["rps_per_cpu_second_median"], 3
        )
        ratios["mattermost_vs_bare_jar_rps_per_cpu_second"] = round(
            mm["rps_per_cpu_second_median"] / jar["rps_per_cpu_second_median"], 3
        )
    if cookies:
        ratios["bare_cookies_vs_bare_rps_per_cpu_second"] = round(
            cookies["rps_per_cpu_second_median"] / bare["rps_per_cpu_second_median"], 3
        )
    return {"generators": summary, "ratios": ratios}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        run_child(args)
        return 0
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="mmload-bench-gen-") as workdir,
        common.stop_on_sigterm(),
        common.Processes(Path(workdir)) as procs,
    ):
        sim = common.start_sim(procs, "sim", cpus=common.core(SIM_CPU))
        token = common.login_token(sim.url, common.sim_username(0), common.SIM_PASSWORD)
        kinds = ["bare", "mattermost"]
        if args.breakdown:
            kinds += ["mattermost-norecord", "bare-jar", "bare-cookies"]
        runs: dict[str, list[dict]] = {kind: [] for kind in [*kinds, "wrk"]}
        offset = 1
        for round_no in range(1, args.rounds + 1):
            for kind in kinds:
                common.log(f"round {round_no}: {kind} FastHttpUser x{args.users}")
                runs[kind].append(run_locust_generator(procs, kind, sim.url, args, offset))
                offset += args.users
                common.log(f"  {runs[kind][-1]['rps']:.0f} req/s")
            common.log(f"round {round_no}: wrk -t1 -c{args.users}")
            runs["wrk"].append(run_wrk_generator(sim.url, token, args))
            common.log(f"  {runs['wrk'][-1]['rps']:.0f} req/s")
    result = summarize(runs)
    # judged per generator CPU-second against the fairest bare baseline: requests/s depends on
    # how much of the shared core each generator got; both ratios are reported
    ratio = result["ratios"]["mattermost_vs_bare_rps_per_cpu_second"]
    result.update(
        benchmark="generator",
        endpoint=ENDPOINT_NAME,
        generator_cpu=GENERATOR_CPU,
        sim_cpu=SIM_CPU,
        users=args.users,
        rounds=args.rounds,
        seconds_per_run=args.seconds,
        judged_ratio=ratio,
        judged_on="mattermost_vs_bare_rps_per_cpu_second",
        target={"judged_ratio": f">= {TARGET_RATIO}"},
        met=ratio >= TARGET_RATIO,
        shortfall=round(max(0.0, TARGET_RATIO - ratio), 3),
        wall_seconds=round(time.monotonic() - started, 1),
    )
    common.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(common.guarded("generator", main))
