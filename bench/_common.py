"""Shared harness for the load-engine benchmarks: processes, ports, CPU pinning, output.

Every benchmark starts only loopback processes it owns, kills them by pid when it ends (even on
error or Ctrl-C), is bounded in time, and prints ONE JSON object as the last line of stdout.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from mmload.config.sim import DEFAULT_PASSWORD
from mmload.errors import RunFailed
from mmload.sim.launcher import sim_command, wait_until_ready

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"


def log(message: str) -> None:
    """Progress for a person watching; stderr, so stdout's last line stays the JSON result."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    """What else the machine was doing: these figures are only comparable at a similar load."""
    loadavg = [round(x, 2) for x in os.getloadavg()]
    return {"cpus": os.cpu_count(), "loadavg_1_5_15": loadavg}


def emit(result: dict) -> None:
    """Print the benchmark's result as one JSON object on the last line of stdout."""
    result = {**result, "machine": machine()}
    print(json.dumps(result, sort_keys=True, default=str), flush=True)


def guarded(benchmark: str, run: Callable[[], int]) -> int:
    """Run a benchmark's main; on failure still end stdout with one JSON object (met: false).

    The full error goes to stderr; the exit code is 1 (130 when interrupted).
    """
    try:
        return run()
    except KeyboardInterrupt:
        emit({"benchmark": benchmark, "error": "interrupted", "met": False})
        return 130
    except Exception as exc:
        print(traceback.format_exc(), file=sys.stderr)
        first = (str(exc) or type(exc).__name__).splitlines()[0]
        emit({"benchmark": benchmark, "error": first, "met": False})
        return 1


def cpu_count() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0))


def core(index: int) -> list[int] | None:
    """CPU `index` as a taskset list, or None (no pinning) on a machine with fewer cores."""
    return [index] if index < cpu_count() else None


def pin_command(command: Sequence[str], cpus: Sequence[int] | None) -> list[str]:
    """Prefix `command` with `taskset` so that it (and its children) run only on `cpus`."""
    if not cpus:
        return list(command)
    return ["taskset", "-c", ",".join(str(c) for c in cpus), *command]


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the benchmark dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


PR_SET_PDEATHSIG = 1


@dataclass
class Managed:
    """A subprocess in its own session, so that stopping it also stops what it started."""

    name: str
    popen: subprocess.Popen
    log_path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the process group we created, then SIGKILL whatever is left after `grace`."""
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(grace)

    def tail(self, lines: int = 20) -> str:
        """The end of the process's log, to explain a failure."""
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Processes:
    """Starts subprocesses and guarantees they are all stopped on exit (a context manager)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Managed] = []

    def start(
        self,
        name: str,
        command: Sequence[str],
        cpus: Sequence[int] | None = None,
        stdout_pipe: bool = False,
        env: dict[str, str] | None = None,
    ) -> Managed:
        """Start `command`, pinned to `cpus` when given; stderr (and stdout unless piped) logged."""
        log_path = self.workdir / f"{name}.log"
        log_file = log_path.open("ab")
        popen = subprocess.Popen(
            pin_command(command, cpus),
            stdout=subprocess.PIPE if stdout_pipe else log_file,
            stderr=log_file,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            text=stdout_pipe,
        )
        log_file.close()
        managed = Managed(name, popen, log_path)
        self.started.append(managed)
        return managed

    def stop_all(self) -> None:
        for managed in reversed(self.started):
            managed.stop()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so that `finally` blocks kill what we started."""

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_http(url: str, timeout: float, proc: Managed | None = None) -> None:
    """Wait until `url` answers any HTTP status; fail early if `proc` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            last = (proc.tail(1) or "no output").strip()
            raise RuntimeError(f"{proc.name} exited early: {last}\n{proc.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def http_json(url: str, body: dict | None = None, headers: dict[str, str] | None = None):
    """A small JSON request (GET, or POST when `body` is given); returns (payload, headers)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        return (json.loads(raw) if raw else None), dict(response.headers)


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants that still exist."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def rss_bytes(pids: Sequence[int]) -> int:
    """Resident memory summed over the given processes and their descendants."""
    total = 0
    seen: set[int] = set()
    for pid in pids:
        for proc in process_tree(pid):
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
    return total


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time used so far by the given processes and their descendants."""
    total = 0.0
    for pid in pids:
        for proc in process_tree(pid):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def gib(n_bytes: float) -> float:
    return round(n_bytes / 2**30, 3)


def prometheus_samples(text: str, metric: str) -> list[tuple[dict[str, str], float]]:
    """Samples of `metric` in Prometheus exposition text, as (labels, value) pairs."""
    samples = []
    for line in text.splitlines():
        if not line.startswith(metric) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, label_text = head.partition("{")
        if name != metric:
            continue
        labels = {}
        for part in label_text.rstrip("}").split(","):
            if "=" in part:
                key, _, val = part.partition("=")
                labels[key.strip()] = val.strip().strip('"')
        samples.append((labels, float(value)))
    return samples


def run_wrk(
    url: str,
    seconds: int,
    connections: int,
    cpus: Sequence[int] | None,
    headers: dict[str, str] | None = None,
) -> dict:
    """Run `wrk` with one thread (pinned to `cpus`) and return its request count and rate."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
    for key, value in (headers or {}).items():
        command += ["-H", f"{key}: {value}"]
    completed = subprocess.run(
        pin_command([*command, url], cpus),
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed: {completed.stderr.strip() or completed.stdout.strip()}")
    return parse_wrk(completed.stdout)


def parse_wrk(output: str) -> dict:
    """Requests, duration, rate and non-2xx count from wrk's text summary."""
    result: dict = {"non_2xx": 0, "socket_errors": 0}
    for line in output.splitlines():
        words = line.split()
        if "requests in" in line:
            result["requests"] = int(words[0])
            result["seconds"] = float(words[3].rstrip(",").rstrip("s"))
        elif line.startswith("Requests/sec:"):
            result["rps"] = float(words[1])
        elif "Non-2xx or 3xx responses:" in line:
            result["non_2xx"] = int(words[-1])
        elif line.strip().startswith("Socket errors:"):
            counts = [w.rstrip(",") for w in words]
            result["socket_errors"] = sum(int(c) for c in counts if c.isdigit())
    if "rps" not in result:
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    return result


# --------------------------------------------------------------------------- the simulator
SIM_PASSWORD = DEFAULT_PASSWORD  # every seeded user's password (PopulationSpec's default)


@dataclass
class Sim:
    """A running `mmload sim` process and its URLs."""

    proc: Managed
    url: str
    metrics_url: str | None


def sim_username(index: int) -> str:
    """The username of the simulator's seeded user number `index` (0-based)."""
    return f"user-{index + 1}"


def start_sim(
    procs: Processes,
    name: str,
    cpus: Sequence[int] | None = None,
    host: str = LOOPBACK,
    extra_args: Sequence[str] = (),
    timeout: float = 60,
) -> Sim:
    """Start `mmload sim` on `host` (pinned to `cpus`) and wait until it prints its URLs.

    The simulator binds port 0 itself (mmload.sim.launcher): no race for a port.
    """
    proc = procs.start(name, sim_command(host=host, args=extra_args), cpus=cpus)
    assert proc.log_path is not None  # stdout and stderr: the launcher reads the URL there
    try:
        ready = wait_until_ready(proc.popen, proc.log_path, timeout)
    except RunFailed as exc:
        raise RuntimeError(f"{name}: {exc}\n{proc.tail()}") from None
    return Sim(proc, ready.url, ready.metrics_url)


def login_token(url: str, username: str, password: str) -> str:
    """Log in to the simulator once (as an API client) and return the session token."""
    body = {"login_id": username, "password": password}
    _, headers = http_json(url + "/api/v4/users/login", body)
    token = headers.get("Token") or headers.get("token")
    if not token:
        raise RuntimeError(f"login to {url} as {username} returned no Token header")
    return token
