"""Capacity: 15,000 concurrent logged-in MattermostUsers running the full action mix, each
holding a WebSocket with its ping.

Everything runs on this one 2-core machine, on loopback only:

- `--sims` simulator processes, each on its own loopback address (127.0.0.1, 127.0.0.2, ...) and
  free port, so that no process holds more than the 20,000 open files it may have and no
  (source, destination) pair needs more than the ~28k ephemeral ports;
- `--workers` generator processes, each a Locust LocalRunner of mmload's `MattermostUser` (the
  11.x web app's login and initial load, its WebSocket with a ping every 30 s, the 60 s polls
  and — unless `--no-actions` — ltng's whole action mix with its idle time), whose users are
  spread evenly over the simulators. Each user has the scenario default of 2 HTTP connections
  plus its WebSocket: 3 sockets, so 3 workers of 5,000 users stay under 20,000 files each.

We spawn the users, wait until all are connected (or `--connect-timeout-s`), then hold for
`--hold-s` (> 2 pings, > 1 poll period) and count: WebSockets connected (client side, and the
simulators' own gauge), users that pinged during the hold, users whose HTTP requests (actions
and polls) succeeded during the hold, HTTP failures during the hold, pings and ping failures,
generator RSS summed over its processes (psutil; peak), and the time to connect everyone.
Target: all users connected, pinging and acting without a failure, generator RSS <= 1.5 GiB.

    python bench/bench_capacity.py                                   # full size (about 10 min)
    python bench/bench_capacity.py --users 40 --hold-s 4 --ping-s 1 --spawn-rate 40   # smoke
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

RSS_TARGET_GIB = 1.5
WS_GAUGE = "mattermost_http_websockets_total"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=15_000)
    parser.add_argument("--workers", type=int, default=3, help="generator processes")
    parser.add_argument("--sims", type=int, default=3, help="simulator processes")
    parser.add_argument("--spawn-rate", type=float, default=60.0, help="users/s, all workers")
    parser.add_argument("--ping-s", type=float, default=30.0, help="WebSocket ping interval")
    parser.add_argument("--hold-s", type=float, default=90.0, help="hold once all are connected")
    parser.add_argument(
        "--no-actions", dest="actions", action="store_false", help="WebSocket and polls only"
    )
    parser.add_argument("--idle-min-ms", type=int, default=1000, help="action mix idle (ltng)")
    parser.add_argument("--idle-avg-ms", type=int, default=20_000)
    parser.add_argument("--connect-timeout-s", type=float, default=900.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hosts", help=argparse.SUPPRESS)
    parser.add_argument("--first-user", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--worker-name", default="w0", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- child process
def run_child(args: argparse.Namespace) -> None:
    """One generator process: spawn its users, report its counters as JSON every 2 s."""
    import _users  # imports locust (gevent) only here

    _users.run_capacity_worker(
        hosts=args.hosts.split(","),
        users=args.users,
        spawn_rate=args.spawn_rate,
        first_user=args.first_user,
        ping_s=args.ping_s,
        worker=args.worker_name,
        workdir=args.workdir,
        actions=args.actions,
        idle_ms=(args.idle_min_ms, args.idle_avg_ms),
    )


# --------------------------------------------------------------------------- parent process
class WorkerFeed:
    """Reads a worker's JSON status lines in a thread; keeps the latest."""

    def __init__(self, proc: common.Managed) -> None:
        self.proc = proc
        self.latest: dict = {}
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.popen.stdout:
            if line.startswith("{"):
                try:
                    self.latest = json.loads(line)
                except json.JSONDecodeError:
                    continue


def sim_websockets(sims: list[common.Sim]) -> int | None:
    """Open WebSockets as the simulators themselves count them (their Prometheus gauge)."""
    total = 0.0
    for sim in sims:
        try:
            with urllib.request.urlopen(sim.metrics_url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return None
        samples = common.prometheus_samples(text, WS_GAUGE)
        if not samples:
            return None
        total += sum(value for _, value in samples)
    return int(total)


def start_sims(procs: common.Processes, count: int) -> list[common.Sim]:
    """`count` simulators, each on its own loopback address."""
    sims = []
    for i in range(count):
        host = f"127.0.0.{i + 1}"
        sims.append(common.start_sim(procs, f"sim-{i}", host=host))
    return sims


def start_workers(
    procs: common.Processes, sims: list[common.Sim], args: argparse.Namespace
) -> list[WorkerFeed]:
    """`--workers` generator processes sharing the users and the spawn rate evenly."""
    hosts = ",".join(sim.url for sim in sims)
    feeds, first = [], 0
    for i in range(args.workers):
        users = args.users // args.workers + (1 if i < args.users % args.workers else 0)
        command = [sys.executable, __file__, "--child", "--hosts", hosts, "--users", str(users)]
        command += ["--spawn-rate", str(args.spawn_rate / args.workers)]
        command += ["--ping-s", str(args.ping_s), "--first-user", str(first)]
        command += ["--worker-name", f"w{i}", "--workdir", str(procs.workdir)]
        command += ["--idle-min-ms", str(args.idle_min_ms), "--idle-avg-ms", str(args.idle_avg_ms)]
        if not args.actions:
            command.append("--no-actions")
        feeds.append(WorkerFeed(procs.start(f"worker-{i}", command, stdout_pipe=True)))
        first += users
    return feeds


def totals(feeds: list[WorkerFeed]) -> dict:
    """Sum of the workers' latest counters."""
    keys = (
        "spawned",
        "logged_in",
        "ws_connected",
        "pings_ok",
        "pings_failed",
        "login_failures",
        "other_failures",
        "pinged_users_in_hold",
        "http_ok",
        "http_failed_in_hold",
        "http_users_in_hold",
    )
    summed = {key: sum(f.latest.get(key, 0) for f in feeds) for key in keys}
    kinds: dict[str, int] = {}
    for feed in feeds:
        for kind, count in feed.latest.get("failure_kinds", {}).items():
            kinds[kind] = kinds.get(kind, 0) + count
    summed["failure_kinds"] = dict(sorted(kinds.items(), key=lambda kv: -kv[1])[:10])
    return summed


class Sampler:
    """Peak generator RSS and the progress log, sampled as the benchmark goes."""

    def __init__(self, feeds: list[WorkerFeed], sims: list[common.Sim]) -> None:
        self.feeds, self.sims = feeds, sims
        self.rss_peak = 0
        self.started = time.monotonic()

    def sample(self) -> dict:
        rss = common.rss_bytes([f.proc.pid for f in self.feeds])
        self.rss_peak = max(self.rss_peak, rss)
        now = totals(self.feeds)
        now["rss_gib"] = common.gib(rss)
        now["sim_websockets"] = sim_websockets(self.sims)
        for feed in self.feeds:
            if not feed.proc.alive():
                raise RuntimeError(f"{feed.proc.name} died:\n{feed.proc.tail()}")
        common.log(
            f"t={time.monotonic() - self.started:5.0f}s spawned={now['spawned']} "
            f"ws={now['ws_connected']} sim_ws={now['sim_websockets']} pings={now['pings_ok']} "
            f"rss={now['rss_gib']} GiB"
        )
        return now


def broadcast_hold_start(feeds: list[WorkerFeed]) -> None:
    """Tell every worker the hold starts now (they count users that ping from here on)."""
    for feed in feeds:
        feed.proc.popen.send_signal(signal.SIGUSR1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        run_child(args)
        return 0
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="mmload-bench-capacity-") as tmp,
        common.stop_on_sigterm(),
        common.Processes(Path(tmp)) as procs,
    ):
        sims = start_sims(procs, args.sims)
        common.log(f"{len(sims)} simulators: {', '.join(s.url for s in sims)}")
        feeds = start_workers(procs, sims, args)
        sampler = Sampler(feeds, sims)
        connect_started = time.monotonic()
        time_to_connect = None
        deadline = connect_started + args.connect_timeout_s
        now = sampler.sample()
        while time.monotonic() < deadline:
            time.sleep(2)
            now = sampler.sample()
            if now["ws_connected"] >= args.users:
                time_to_connect = time.monotonic() - connect_started
                break
        connected_at_end_of_connect = now["ws_connected"]
        connect_cpu = {
            "generator": round(common.cpu_seconds([f.proc.pid for f in feeds]), 1),
            "sims": round(common.cpu_seconds([s.proc.pid for s in sims]), 1),
        }
        pings_before = now["pings_ok"]
        broadcast_hold_start(feeds)
        hold_end = time.monotonic() + args.hold_s
        while time.monotonic() < hold_end:
            time.sleep(min(2.0, max(0.0, hold_end - time.monotonic())))
            now = sampler.sample()
        time.sleep(2.5)  # one more status line from each worker
        final = sampler.sample()
        rss_peak = sampler.rss_peak
    result = {
        "benchmark": "capacity",
        "users": args.users,
        "workers": args.workers,
        "sims": args.sims,
        "spawn_rate": args.spawn_rate,
        "ping_interval_s": args.ping_s,
        "hold_s": args.hold_s,
        "actions": args.actions,
        "idle_ms": [args.idle_min_ms, args.idle_avg_ms],
        "connected": final["ws_connected"],
        "connected_at_connect_deadline": connected_at_end_of_connect,
        "sim_websockets": final["sim_websockets"],
        "time_to_connect_s": None if time_to_connect is None else round(time_to_connect, 1),
        "cpu_seconds_to_connect": connect_cpu,
        "generator_cpu_ms_per_connected_user": round(
            1000 * connect_cpu["generator"] / max(1, connected_at_end_of_connect), 2
        ),
        "pinged_users_in_hold": final["pinged_users_in_hold"],
        "pings_in_hold": final["pings_ok"] - pings_before,
        "pings_total": final["pings_ok"],
        "ping_failures": final["pings_failed"],
        "http_users_in_hold": final["http_users_in_hold"],
        "http_failures_in_hold": final["http_failed_in_hold"],
        "http_requests_ok": final["http_ok"],
        "login_failures": final["login_failures"],
        "other_failures": final["other_failures"],
        "failure_kinds": final["failure_kinds"],
        "generator_rss_peak_gib": common.gib(rss_peak),
        "generator_rss_per_user_kib": round(rss_peak / max(1, args.users) / 1024, 1),
        "target": {
            "connected": args.users,
            "pinged_users_in_hold": args.users,
            "http_users_in_hold": args.users,
            "http_failures_in_hold": 0,
            "generator_rss_peak_gib": f"<= {RSS_TARGET_GIB}",
        },
        "met": (
            final["ws_connected"] >= args.users
            and final["pinged_users_in_hold"] >= args.users
            and final["http_users_in_hold"] >= args.users
            and final["http_failed_in_hold"] == 0
            and final["pings_failed"] == 0
            and rss_peak <= RSS_TARGET_GIB * 2**30
        ),
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    common.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(common.guarded("capacity", main))
