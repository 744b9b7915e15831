"""A load run from the deployment's own machines: the master on the coordinator, workers on
the agents, the record back on the operator's laptop.

Everything goes over SSH (``ssh -F <working dir>/ssh_config``, private hosts through the jump
host) with the detached-job primitives of :mod:`mmload.lifecycle.remote`, so a dropped
connection never stops a run. Where things are:

- the master is the job ``<remote dir>/jobs/master`` on the coordinator, running
  ``<remote mmload> load master SCENARIO ... --status-file status.json``: the run itself, plus
  a status line every few seconds in its ``out.log`` and ``status.json`` (phase, users, error
  rate) for ``mmload load status``;
- each worker is the job ``<remote dir>/jobs/worker-<host>-<k>`` on an agent;
- the record is written under ``<remote dir>/runs`` on the coordinator and copied back into
  the local ``--out`` (default ``runs/``), checked against a sha256 manifest;
- the laptop keeps ``load.json`` in the deployment's working dir: which jobs belong to the
  current run (``attach``, ``status``, ``stop`` and ``fetch`` read it).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mmload import record
from mmload.config.remote import REMOTE_MMLOAD, RemoteLoadOptions
from mmload.config.scenario import Population
from mmload.configure.inventory import DeploymentOutputs
from mmload.errors import RunFailed, UserError
from mmload.files import write_atomic
from mmload.lifecycle.hosts import Reached
from mmload.lifecycle.remote import ZOMBIE_FN, Job, JobState, Remote
from mmload.load.population import population_text

T = TypeVar("T")
STATE_FILE = "load.json"
STATUS_FILE = "status.json"
PROMETHEUS_PORT = 9090  # the metrics node's Prometheus (Debian's default port)
RECONNECT_TRIES = 5


def parallel(fn: Callable[[Any], T], items: Iterable[Any], limit: int = 16) -> list[T]:
    """``fn`` over ``items`` in threads (each call is mostly an SSH round trip), in order; the
    first exception is raised once all are done."""
    items = list(items)
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(limit, len(items))) as pool:
        futures = [pool.submit(fn, i) for i in items]
        wait(futures)
        return [f.result() for f in futures]


@dataclass
class LoadState:
    """``load.json``: the jobs of the deployment's current (or last) remote run."""

    coordinator: str
    remote_dir: str
    master: str  # the master's job folder on the coordinator
    workers: list[tuple[str, str]]  # (agent host, job folder)
    out: str  # the local parent folder of run records
    scenario: str
    started_at: str
    expected: int = 0  # workers the master waits for (jobs and already running units)
    run_dir: str | None = None  # the record's folder on the coordinator, once known
    fetched: str | None = None  # the local copy, once fetched

    @property
    def master_job(self) -> Job:
        return Job(self.coordinator, self.master)

    def save(self, workdir: Path) -> None:
        write_atomic(workdir / STATE_FILE, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, workdir: Path) -> LoadState:
        path = workdir / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            data["workers"] = [tuple(w) for w in data["workers"]]
            return cls(**data)
        except FileNotFoundError:
            raise UserError(
                "no remote load started for this deployment (run `mmload load start` first)",
                source=str(path),
            ) from None
        except (ValueError, TypeError, KeyError) as exc:
            raise UserError(f"damaged ({exc}); start a new run", source=str(path)) from None


@dataclass(frozen=True)
class LoadPlan:
    """Where a remote run goes, all derived from outputs.json and the flags."""

    coordinator: str  # host name
    master_host: str  # the coordinator's private address: the agents connect to it
    master_port: int
    agents: tuple[str, ...]
    target: str
    prometheus: str | None
    remote_mmload: str
    remote_dir: str
    # agent name -> the local addresses its workers send from (an agent with several private
    # IPs in outputs.json); an agent not named: the system's choice
    sources: dict[str, tuple[str, ...]] = field(default_factory=dict)


def plan_load(
    outputs: DeploymentOutputs,
    *,
    target: str | None = None,
    prometheus: str | None = None,
    master_port: int = RemoteLoadOptions.model_fields["master_port"].default,
    remote_mmload: str | None = None,
    remote_dir: str = RemoteLoadOptions.model_fields["remote_dir"].default,
) -> LoadPlan:
    """The coordinator, the agents, the target (the first of ``load_targets``: a proxy's private
    address, or the existing server's URL; else ``site_url``) and Prometheus (the first metrics
    node) of a deployment; a UserError names what outputs.json lacks."""
    coordinators = outputs.hosts.get("coordinator") or []
    if not coordinators:
        raise UserError("no coordinator host: the Locust master runs there", field="hosts")
    agent_hosts = outputs.hosts.get("agents") or []
    agents = tuple(h.name for h in agent_hosts)
    if not agents:
        raise UserError("no agents hosts: the Locust workers run there", field="hosts")
    metrics = outputs.hosts.get("metrics") or []
    if prometheus is None and metrics:
        prometheus = f"http://{metrics[0].private_ip}:{PROMETHEUS_PORT}"
    return LoadPlan(
        coordinator=coordinators[0].name,
        master_host=coordinators[0].private_ip,
        master_port=master_port,
        agents=agents,
        target=target or (outputs.load_targets or [outputs.site_url])[0],
        prometheus=prometheus,
        remote_mmload=remote_mmload or os.environ.get("MMLOAD_REMOTE_MMLOAD") or REMOTE_MMLOAD,
        remote_dir=remote_dir,
        sources={h.name: tuple(h.private_ips) for h in agent_hosts if len(h.private_ips) > 1},
    )


def master_argv(
    plan: LoadPlan, scenario: str, run_flags: dict[str, Any], workers: int, runs_dir: str
) -> list[str]:
    """The master's command line on the coordinator (``mmload load master``)."""
    argv = [plan.remote_mmload, "load", "master", scenario, "--target", plan.target]
    for name, value in run_flags.items():
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    argv += [
        "--remote-workers",
        str(workers),
        "--master-bind",
        plan.master_host,
        "--master-port",
        str(plan.master_port),
        "--out",
        runs_dir,
        "--status-file",
        STATUS_FILE,
        "--yes",  # the operator confirmed the target on the laptop
    ]
    if plan.prometheus:
        argv += ["--prometheus", plan.prometheus]
    return argv


def worker_argv(plan: LoadPlan, population: str, agent: str | None = None) -> list[str]:
    """One worker's command line on ``agent`` (``population``: its population file there), with
    a ``--source-address`` for each of the agent's private addresses when it has several."""
    argv = [
        plan.remote_mmload,
        "worker",
        "--master",
        plan.master_host,
        "--master-port",
        str(plan.master_port),
        "--population",
        population,
    ]
    for address in plan.sources.get(agent or "", ()):
        argv += ["--source-address", address]
    return argv


# configure's `mmload-worker@` units run as the agents role's user (agents_user), whose home is
# its run dir: they read the default population file there (mmload.load.population)
UNIT_USER = "mmload"
UNIT_POPULATION = '"$HOME/.mmload/population.json"'


def put_population(remote: Remote, host: str, path: str, text: str, *, unit: bool) -> None:
    """Write the population file (0600 from its creation) on ``host``: at ``path`` for the
    SSH user's worker jobs, else (``unit``) in the unit user's home through ``sudo -n``.
    The content goes through the SSH channel's stdin, never a command line."""
    target = UNIT_POPULATION if unit else shlex.quote(path)
    script = f"umask 077; mkdir -p $(dirname {target}) && cat > {target} && chmod 600 {target}"
    if unit:
        script = f"sudo -n -H -u {UNIT_USER} sh -c {shlex.quote(script)}"
    try:
        remote.run(host, script, stdin=text)
    except RunFailed as exc:
        what = "the mmload-worker@ units" if unit else "the worker jobs"
        raise RunFailed(f"{host}: cannot give {what} the population file: {exc}") from None


@dataclass(frozen=True)
class HostFacts:
    """What one SSH round trip tells about a host before a run."""

    home: str
    has_mmload: bool
    vcpus: int
    unit_workers: int = 0  # `mmload-worker@N` systemd units running (configure starts them)


def probe_host(remote: Remote, host: str, mmload: str) -> HostFacts:
    """The SSH user's home, whether ``mmload`` is executable there, and its vCPU count."""
    q = shlex.quote(mmload)
    script = (
        f'echo "$HOME"; if [ -x {q} ]; then echo yes; else echo no; fi; nproc; '
        "if command -v systemctl >/dev/null 2>&1; then "
        "systemctl list-units 'mmload-worker@*' --state=active --no-legend 2>/dev/null | wc -l; "
        "else echo 0; fi"
    )
    return parse_facts(remote.run(host, script).stdout)


def parse_facts(out: str) -> HostFacts:
    """:func:`probe_host`'s four lines: home, mmload there (yes/no), vCPUs, active units."""
    words = [w.strip() for w in out.splitlines()] + ["", "", "", ""]

    def number(word: str, default: int) -> int:
        return int(word) if word.isdigit() else default

    return HostFacts(words[0], words[1] == "yes", max(1, number(words[2], 1)), number(words[3], 0))


def worker_counts(
    plan: LoadPlan, facts: dict[str, HostFacts], per_agent: int | None
) -> tuple[dict[str, int], int]:
    """Workers to start as jobs per agent, and the workers the master waits for. An agent whose
    `mmload-worker@` units already run (configure started them, connecting to port 5557) gets
    no jobs: its units are counted instead, unless --workers-per-agent asks for jobs."""
    jobs: dict[str, int] = {}
    units = 0
    for agent in plan.agents:
        f = facts[agent]
        if per_agent is None and f.unit_workers:
            units += f.unit_workers
            jobs[agent] = 0
        else:
            jobs[agent] = per_agent or f.vcpus
    return jobs, units + sum(jobs.values())


def absolute(folder: str, facts: HostFacts, host: str) -> str:
    """``folder`` with a leading ``~`` replaced by the SSH user's home on the host."""
    if folder != "~" and not folder.startswith("~/"):
        return folder
    if not facts.home.startswith("/"):
        raise RunFailed(f"{host}: cannot tell the SSH user's home folder")
    return facts.home + folder[1:]


def probe_hosts(remote: Remote, plan: LoadPlan) -> dict[str, HostFacts]:
    """Probe the coordinator and every agent; RunFailed when mmload is missing on one."""
    hosts = (plan.coordinator, *plan.agents)
    found = parallel(lambda host: probe_host(remote, host, plan.remote_mmload), hosts)
    facts = dict(zip(hosts, found, strict=True))
    for host in hosts:
        if not facts[host].has_mmload:
            raise RunFailed(
                f"{host}: {plan.remote_mmload} is not there: run `mmload configure` (it "
                "installs mmload on the agents and the coordinator) or pass --remote-mmload"
            )
    return facts


def start_load(
    reached: Reached,
    plan: LoadPlan,
    scenario: str,
    run_flags: dict[str, Any],
    *,
    out: str,
    workers_per_agent: int | None = None,
    scenario_text: str | None = None,
    remote: Remote | None = None,
    population: Population | None = None,
) -> LoadState:
    """Start the master on the coordinator and the workers on the agents (all detached).
    ``scenario`` is a built-in name, or ``scenario_text`` the YAML of a scenario file, which is
    written beside the master's job. Every agent first gets the scenario's ``population`` in a
    0600 file (the master's plan carries no password)."""
    population = population or Population()
    remote = remote or Remote(reached.access)
    previous = _previous_state(reached.workdir)
    if previous is not None and remote.job_state(previous.master_job).running:
        raise UserError(
            f"a remote run is still going on {previous.coordinator} (started "
            f"{previous.started_at}): `mmload load attach`, `status` or `stop` it first",
            source=str(reached.workdir / STATE_FILE),
        )
    facts = probe_hosts(remote, plan)
    root = absolute(plan.remote_dir, facts[plan.coordinator], plan.coordinator)
    counts, total = worker_counts(plan, facts, workers_per_agent)
    master = f"{root}/jobs/master"
    remote_scenario = scenario
    if scenario_text is not None:
        remote_scenario = f"{master}/scenario.yaml"
        put_text(remote, plan.coordinator, remote_scenario, scenario_text)
    argv = master_argv(plan, remote_scenario, run_flags, total, f"{root}/runs")
    remote.start_job(plan.coordinator, master, argv, remove=(STATUS_FILE,))
    workers = [
        (agent, f"{absolute(plan.remote_dir, facts[agent], agent)}/jobs/worker-{agent}-{k}")
        for agent, count in counts.items()
        for k in range(count)
    ]
    text = population_text(population)
    files = {a: f"{absolute(plan.remote_dir, facts[a], a)}/population.json" for a in plan.agents}
    parallel(lambda a: put_population(remote, a, files[a], text, unit=not counts[a]), plan.agents)
    parallel(lambda w: remote.start_job(w[0], w[1], worker_argv(plan, files[w[0]], w[0])), workers)
    state = LoadState(
        coordinator=plan.coordinator,
        remote_dir=root,
        master=master,
        workers=workers,
        out=out,
        scenario=scenario,
        started_at=record.iso(record.utc_now()) or "",
        expected=total,
    )
    state.save(reached.workdir)
    return state


def _previous_state(workdir: Path) -> LoadState | None:
    try:
        return LoadState.load(workdir)
    except UserError:
        return None


# -- watching a run ----------------------------------------------------------------------------


def stream_script(folder: str, offset: int) -> str:
    """A remote shell script: print ``out.log`` from byte ``offset`` on, as it grows, until the
    job is no longer running (exited, or killed: a zombie counts as gone)."""
    q = shlex.quote(folder)
    return (
        f"cd {q} || exit 3; "
        f"{ZOMBIE_FN} "
        "alive() { [ -s pid ] && kill -0 $(cat pid) 2>/dev/null && ! zombie $(cat pid); }; "
        f"tail -c +{offset + 1} -F out.log 2>/dev/null & t=$!; "
        "while [ ! -s exit ] && alive; do sleep 0.5; done; sleep 1; kill $t 2>/dev/null; "
        "wait $t 2>/dev/null; exit 0"
    )


@dataclass
class Stream:
    """``out.log`` of the master copied to ``write`` as it grows, across reconnects."""

    remote: Remote
    job: Job
    write: Callable[[bytes], None]
    offset: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def follow(self) -> None:
        """Stream until the job ends; returns normally when the remote side ended cleanly,
        raises ConnectionError when the connection dropped."""
        argv = [
            *self.remote.access.argv(self.job.host, "-T"),
            stream_script(self.job.folder, self.offset),
        ]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        assert self.proc.stdout is not None
        try:
            while chunk := self.proc.stdout.read1(65536):
                self.offset += len(chunk)
                self.write(chunk)
            code = self.proc.wait()
        finally:
            self.close()
        if code != 0:
            raise ConnectionError(f"ssh {self.job.host} ended with exit {code}")

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def follow_run(
    remote: Remote,
    state: LoadState,
    write: Callable[[bytes], None],
    note: Callable[[str], None],
    *,
    tries: int = RECONNECT_TRIES,
    pause_s: float = 2.0,
) -> JobState:
    """Stream the master's output until it ends, reconnecting after a dropped connection
    (``tries`` times in a row); the master's final state. RunFailed when it cannot reconnect
    (the run goes on there)."""
    stream = Stream(remote, state.master_job, write)
    failures = 0
    while True:
        try:
            stream.follow()
        except ConnectionError as exc:
            failures += 1
            note(f"connection to {state.coordinator} lost ({exc}); reconnecting")
        else:
            failures = 0
        try:
            job = remote.job_state(state.master_job)
        except RunFailed as exc:
            job = None
            if failures >= tries:
                raise RunFailed(
                    f"cannot reach {state.coordinator} ({exc}); the run goes on there: "
                    "`mmload load attach -c …` follows it again, `mmload load fetch -c …` "
                    "copies its record"
                ) from None
            failures += 1
        if job is not None and not job.running:
            return job
        time.sleep(pause_s)


def read_status(remote: Remote, state: LoadState) -> dict[str, Any] | None:
    """The master's ``status.json`` (None before the run wrote one)."""
    proc = remote.run(
        state.coordinator, f"cat {shlex.quote(state.master)}/{STATUS_FILE}", check=False
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def stop_run(remote: Remote, state: LoadState, *, grace_s: float = 60) -> JobState:
    """SIGINT the master (it stops the workers and saves the record), then make sure every
    worker job has ended too."""
    final = remote.stop_job(state.master_job, grace_s=grace_s)
    parallel(lambda w: remote.stop_job(Job(*w), grace_s=10), state.workers)
    return final


def stop_workers(remote: Remote, state: LoadState) -> None:
    """After the master ended: the workers quit by themselves; stop any that did not."""

    def finish(worker: tuple[str, str]) -> None:
        job = Job(*worker)
        if remote.wait_job(job, timeout_s=15, poll_s=0.5).running:
            remote.stop_job(job, grace_s=5)

    parallel(finish, state.workers)


def remote_run_dir(remote: Remote, state: LoadState) -> str:
    """The record's folder on the coordinator, from the master's status.json."""
    if state.run_dir:
        return state.run_dir
    status = read_status(remote, state)
    run_dir = (status or {}).get("run_dir")
    if not run_dir:
        raise RunFailed(
            f"the run on {state.coordinator} never opened a record; its output: "
            f"{state.master}/out.log (`mmload ssh -c … coordinator -- cat …`)"
        )
    return str(run_dir)


def fetch_record(remote: Remote, state: LoadState, workdir: Path) -> Path:
    """Copy the record into the local ``out`` folder (checked complete) and return its path;
    refuses a record whose run is still going."""
    if remote.job_state(state.master_job).running:
        raise UserError(
            "the run is still going: `mmload load attach` waits for it, `mmload load stop` ends it"
        )
    run_dir = remote_run_dir(remote, state)
    local = Path(state.out) / Path(run_dir).name
    remote.fetch_dir(state.coordinator, run_dir, local)
    meta = record.read_run(local)
    if meta.get("outcome") == "running":
        raise RunFailed(f"the record in {local} still says running: the master died mid-run")
    state.run_dir, state.fetched = run_dir, str(local)
    state.save(workdir)
    return local


def put_text(remote: Remote, host: str, path: str, text: str) -> None:
    """Write a small text file (a scenario) on ``host``."""
    if len(text.encode()) > 64 * 1024:
        raise UserError("larger than 64 KiB: too big to send as a scenario", source=path)
    q = shlex.quote
    remote.run(host, f"mkdir -p {q(str(Path(path).parent))} && printf %s {q(text)} > {q(path)}")
