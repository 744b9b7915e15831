"""CLI commands that reach a deployment's machines: `mmload ssh`, `mmload db`, the remote
load (`mmload load start|attach|status|stop|fetch`) and `mmload collect`."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from mmload.commands.common import CONFIG_OPTION, default_of, interactive, model_from_flags
from mmload.commands.load import fail_on_slo_option
from mmload.config.remote import REMOTE_MMLOAD, CollectOptions, RemoteLoadOptions, StopOptions
from mmload.files import write_atomic


@click.command("ssh", context_settings={"ignore_unknown_options": True})
@CONFIG_OPTION
@click.argument("name")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def ssh_cmd(config: str, name: str, command: tuple[str, ...]) -> None:
    """Open a shell on host NAME (or run COMMAND there), through the jump host when NAME is
    private.

    NAME is a host name from outputs.json (mm-2k-app-0), a role (coordinator: its first host)
    or ROLE-N (app-1). The connection uses the deployment's key and its own known_hosts file
    (ssh_config in the working dir): `ssh -F .deployments/NAME/ssh_config HOST` works too.
    """
    from mmload.lifecycle.hosts import reach, resolve_host

    reached = reach(config)
    host = resolve_host(reached.outputs, name)
    tty = ["-t"] if not command and interactive() and sys.stdin.isatty() else []
    argv = reached.access.argv(host, *tty)
    if command:
        argv += ["--", *command]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(argv[0], argv)  # ssh's own exit code; nothing of mmload stays behind


@click.command("db", context_settings={"ignore_unknown_options": True})
@CONFIG_OPTION
@click.option("--reader", is_flag=True, help="Connect to the first reader instead of the writer.")
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
def db_cmd(config: str, reader: bool, psql_args: tuple[str, ...]) -> None:
    """psql to the deployment's database through the jump host (TLS, RDS-managed password).

    Extra arguments go to psql, e.g. `mmload db -c deployment.yaml -- -c 'select 1'`. The
    password is read from the RDS-managed secret (or $MMLOAD_DB_PASSWORD) and handed to psql in
    a private 0600 file: never on a command line or in a log.
    """
    from mmload.lifecycle.db import run_psql
    from mmload.lifecycle.hosts import reach

    code = run_psql(reach(config), psql_args, reader=reader)
    sys.exit(code)


# -- the remote load ---------------------------------------------------------------------------


@click.group("load")
def load_group() -> None:
    """Run a scenario from the deployment's own machines: the Locust master on the
    coordinator, `mmload worker`s on the agents (over SSH through the jump host), the record
    copied back into runs/. A dropped connection never stops the run: `attach` follows it
    again, `fetch` copies its record later."""


RUN_FLAGS = (
    "scale",
    "users",
    "duration",
    "hold",
    "label",
    "architecture",
    "rate_cap",
    "max_users",
)


@load_group.command("start")
@CONFIG_OPTION
@click.argument("scenario")
@click.option("--scale", type=float, help="Scale users and time together (as `mmload run`).")
@click.option("--users", type=int, help="Users (overrides the scenario, after --scale).")
@click.option(
    "--duration",
    type=float,
    help="The WHOLE run in seconds: arrivals (and herd phases) plus the hold, which gets "
    "the rest (ceiling: the time limit), as `mmload run`.",
)
@click.option(
    "--hold",
    type=float,
    help="Seconds everyone stays connected after the last arrival (overrides hold_s).",
)
@click.option("--label", help="A label for the run, e.g. the ESR under test.")
@click.option("--architecture", help="The architecture under test.")
@click.option(
    "--rate-cap",
    "--max-rps",
    "rate_cap",
    type=float,
    help="Hard cap on requests per second for the whole run (--max-rps: the same cap).",
)
@click.option("--max-users", type=int, help="Hard cap on users at once (as `mmload run`).")
@click.option(
    "--target",
    help="Base URL to load.  [default: the first load_targets of outputs.json, else site_url]",
)
@click.option(
    "--prometheus", help="Prometheus URL as the coordinator sees it.  [default: the metrics node]"
)
@click.option(
    "--workers-per-agent",
    type=int,
    help="`mmload worker` processes per agent.  [default: one per vCPU of the agent]",
)
@click.option(
    "--master-port",
    type=int,
    help="The port the master listens on (the agents' security group allows it).  "
    f"[default: {default_of(RemoteLoadOptions, 'master_port')}]",
)
@click.option(
    "--remote-mmload",
    help="mmload on the hosts.  [default: $MMLOAD_REMOTE_MMLOAD, else "
    f"{REMOTE_MMLOAD}, where `mmload configure` installs it]",
)
@click.option(
    "--remote-dir",
    help="Folder for jobs and run records on the hosts.  "
    f"[default: {default_of(RemoteLoadOptions, 'remote_dir')}]",
)
@click.option(
    "--out",
    help=f"Local parent folder of records.  [default: {default_of(RemoteLoadOptions, 'out')}]",
)
@click.option("--detach", is_flag=True, help="Start the run and return (attach later).")
@click.option("--yes", is_flag=True, help="Do not ask before loading a non-loopback target.")
@fail_on_slo_option
def load_start_cmd(config: str, scenario: str, fail_on_slo: bool, **flags: Any) -> None:
    """Start SCENARIO on the deployment: master on the coordinator, workers on the agents.

    The worker count, the master's address and Prometheus come from outputs.json. The master's
    status is streamed here until the run ends, then the record is copied into --out and
    checked complete. Ctrl-C stops the remote run cleanly and still copies the partial record.

    Exit codes as `mmload run`: 0 every SLO passed, 1 an SLO failed or could not be measured
    (see --no-fail-on-slo) or the run failed, 2 bad input, 130 interrupted.
    """
    from mmload.commands.load import confirm_target, prepared_scenario
    from mmload.config.curves import portable_text
    from mmload.config.scenario import SCENARIO_DIR, RunOptions, load_scenario
    from mmload.errors import UserError
    from mmload.lifecycle.hosts import reach
    from mmload.lifecycle.remote_load import plan_load, start_load

    run_flags = {k: flags[k] for k in RUN_FLAGS}
    opts = model_from_flags(
        RemoteLoadOptions, {k: flags[k] for k in RemoteLoadOptions.model_fields}
    )
    spec, path = load_scenario(scenario)
    if spec.locustfile:
        raise UserError(
            "a custom locustfile cannot run remotely yet: use a scenario without one",
            source=str(path),
            field="locustfile",
        )
    reached = reach(config)
    plan = plan_load(
        reached.outputs,
        target=opts.target,
        prometheus=opts.prometheus,
        master_port=opts.master_port,
        remote_mmload=opts.remote_mmload,
        remote_dir=opts.remote_dir,
    )
    run_opts = model_from_flags(
        RunOptions, {**run_flags, "target": plan.target, "prometheus": plan.prometheus}
    )
    spec_run = prepared_scenario(scenario, run_opts)[0]
    confirm_target(plan.target, flags["yes"], spec_run, probe=False)
    builtin = path.resolve().parent == SCENARIO_DIR.resolve()
    state = start_load(
        reached,
        plan,
        spec.name if builtin else scenario,
        run_flags,
        out=opts.out,
        workers_per_agent=opts.workers_per_agent,
        scenario_text=None if builtin else portable_text(spec, path),
        population=spec.population,
    )
    click.echo(
        f"started {spec.name} on {state.coordinator} with {state.expected} worker(s) on "
        f"{len(plan.agents)} agent(s); target {plan.target}"
    )
    if flags["detach"]:
        click.echo(f"follow it with `mmload load attach -c {config}`")
        return
    _follow_and_fetch(reached, state, fail_on_slo)


def _follow_and_fetch(reached: Any, state: Any, fail_on_slo: bool) -> None:
    """Stream the master's output, then fetch the record; Ctrl-C stops the remote run first."""
    from mmload.lifecycle.remote import Remote
    from mmload.lifecycle.remote_load import follow_run, stop_run, stop_workers

    remote = Remote(reached.access)

    def write(chunk: bytes) -> None:
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()

    def note(line: str) -> None:
        click.echo(f"mmload: {line}", err=True)

    try:
        follow_run(remote, state, write, note)
    except KeyboardInterrupt:
        note(f"stopping the run on {state.coordinator} (it saves what it measured)…")
        stop_run(remote, state)
    else:
        stop_workers(remote, state)
    _fetch_and_judge(reached, state, remote, fail_on_slo)


def _fetch_and_judge(reached: Any, state: Any, remote: Any, fail_on_slo: bool) -> None:
    """Copy the record back, print where it is and exit by its verdict (0 also for a failed
    SLO when ``fail_on_slo`` is off; a failed, aborted or interrupted run never exits 0)."""
    from mmload import record
    from mmload.lifecycle.remote_load import fetch_record

    local = fetch_record(remote, state, reached.workdir)
    meta = record.read_meta(local)
    verdict = record.run_verdict(meta)
    click.echo(f"record copied back complete: {local}")
    click.echo(f"outcome {meta.outcome}; verdict {verdict.status}")
    for reason in verdict.reasons:
        click.echo(f"  {reason}")
    if meta.outcome == "interrupted":
        sys.exit(130)
    if meta.outcome != "completed":
        sys.exit(1)
    sys.exit(0 if verdict.ok or not fail_on_slo else 1)


@load_group.command("attach")
@CONFIG_OPTION
@fail_on_slo_option
def load_attach_cmd(config: str, fail_on_slo: bool) -> None:
    """Follow the deployment's remote run again (after a dropped connection or --detach),
    then copy its record back. Ctrl-C stops the run, as with `load start`."""
    from mmload.lifecycle.hosts import reach
    from mmload.lifecycle.remote_load import LoadState

    reached = reach(config)
    _follow_and_fetch(reached, LoadState.load(reached.workdir), fail_on_slo)


@load_group.command("fetch")
@CONFIG_OPTION
@fail_on_slo_option
def load_fetch_cmd(config: str, fail_on_slo: bool) -> None:
    """Copy the record of the deployment's last remote run into the local runs folder
    (checked complete against a sha256 manifest made on the coordinator)."""
    from mmload.lifecycle.hosts import reach
    from mmload.lifecycle.remote import Remote
    from mmload.lifecycle.remote_load import LoadState

    reached = reach(config)
    _fetch_and_judge(reached, LoadState.load(reached.workdir), Remote(reached.access), fail_on_slo)


@load_group.command("status")
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
def load_status_cmd(config: str, as_json: bool) -> None:
    """The remote run's phase, users and error rate (from the master's status.json)."""
    from mmload.lifecycle.hosts import reach
    from mmload.lifecycle.remote import Remote
    from mmload.lifecycle.remote_load import LoadState, read_status

    reached = reach(config)
    state = LoadState.load(reached.workdir)
    remote = Remote(reached.access)
    job = remote.job_state(state.master_job)
    status = read_status(remote, state) or {}
    shown = {"job": job.phase, "exit_code": job.exit_code, **status}
    if as_json:
        click.echo(json.dumps(shown))
        return
    click.echo(status_line(state.scenario, state.coordinator, shown))


def status_line(scenario: str, host: str, s: dict[str, Any]) -> str:
    """One line: the job, the run's phase, users, requests and error rate."""
    job = s["job"] if s.get("exit_code") is None else f"{s['job']} (exit {s['exit_code']})"
    if "phase" not in s:
        return f"{scenario} on {host}: {job}; no status yet"
    rate = s.get("error_rate")
    rate_text = "-" if rate is None else f"{rate:.2%}"
    return (
        f"{scenario} on {host}: {job}; phase {s['phase']}, users {s.get('users', 0):,}, "
        f"requests {s.get('requests', 0):,}, errors {s.get('errors', 0):,} ({rate_text}), "
        f"elapsed {s.get('elapsed_s', 0):.0f} s"
    )


@load_group.command("stop")
@CONFIG_OPTION
@click.option(
    "--grace",
    type=float,
    help="Seconds to wait after SIGINT before SIGTERM (then SIGKILL).  "
    f"[default: {default_of(StopOptions, 'grace'):g}]",
)
def load_stop_cmd(config: str, grace: float | None) -> None:
    """Stop the remote run: SIGINT to the master, which ends it `interrupted` and saves the
    record (`mmload load fetch` copies it)."""
    from mmload.lifecycle.hosts import reach
    from mmload.lifecycle.remote import Remote
    from mmload.lifecycle.remote_load import LoadState, stop_run

    reached = reach(config)
    opts = model_from_flags(StopOptions, {"grace": grace})
    state = LoadState.load(reached.workdir)
    final = stop_run(Remote(reached.access), state, grace_s=opts.grace)
    code = "" if final.exit_code is None else f" (exit {final.exit_code})"
    click.echo(f"the run on {state.coordinator} is {final.phase}{code}")


@load_group.command("master", hidden=True)
@click.argument("scenario")
@click.option("--target", required=True)
@click.option("--scale", type=float)
@click.option("--users", type=int)
@click.option("--duration", type=float)
@click.option("--hold", type=float)
@click.option("--label")
@click.option("--architecture")
@click.option("--rate-cap", type=float)
@click.option("--max-users", type=int)
@click.option("--remote-workers", type=int)
@click.option("--master-bind")
@click.option("--master-port", type=int)
@click.option("--out")
@click.option("--prometheus")
@click.option("--status-file", required=True, type=click.Path(dir_okay=False))
@click.option("--yes", is_flag=True)
def load_master_cmd(scenario: str, status_file: str, yes: bool, **flags: Any) -> None:
    """The coordinator's side of `mmload load start`: `mmload run` as a master that also
    writes its status to --status-file and a plain status line to stdout."""
    from mmload.commands.load import confirm_target, prepared_scenario, print_summary
    from mmload.config.scenario import RunOptions

    opts = model_from_flags(RunOptions, flags)
    spec, path = prepared_scenario(scenario, opts)
    confirm_target(opts.target, yes)
    from mmload.load.runner import ScenarioRun  # imports Locust (gevent monkey-patching)

    writer = StatusWriter(Path(status_file))
    run = ScenarioRun(
        spec,
        opts,
        scenario_file=str(path),
        on_tick=writer.tick,
        announce=writer.announce,
        announce_master=lambda address, n: click.echo(
            f"master listening on {address}: waiting for {n} worker(s)", err=True
        ),
        warn=lambda line: click.echo(f"mmload: warning: {line}", err=True),
    )
    try:
        result = run.execute()
    except Exception as exc:
        writer.final("failed", str(exc))
        raise
    writer.final(result.meta["outcome"], result.meta.get("error"))
    print_summary(result)
    if result.meta["outcome"] == "interrupted":
        sys.exit(130)


class StatusWriter:
    """The master's status.json (atomic, at most once a second) and a status line every
    ``line_every_s`` on stdout."""

    def __init__(self, path: Path, *, line_every_s: float = 2.0):
        self.path = path
        self.line_every_s = line_every_s
        self.data: dict[str, Any] = {"phase": "starting"}
        self._written = 0.0
        self._printed = 0.0

    def announce(self, run_dir: Path) -> None:
        self.data["run_dir"] = str(run_dir.resolve())
        click.echo(f"run record: {run_dir}")
        self._write()

    def tick(self, snap: Any) -> None:
        errors, requests = snap.errors, snap.requests
        self.data.update(
            phase=snap.phase,
            elapsed_s=round(snap.elapsed_s, 1),
            users=snap.users_spawned,
            requests=requests,
            errors=errors,
            error_rate=errors / requests if requests else None,
            recent_rps=round(snap.recent_rps, 1),
            recent_p99_ms=snap.recent_p99_ms,
        )
        now = time.monotonic()
        if now - self._written >= 1.0:
            self._write()
            self._written = now
        if now - self._printed >= self.line_every_s:
            self._printed = now
            p99 = snap.recent_p99_ms
            click.echo(
                f"[{snap.elapsed_s:6.0f} s] {snap.phase}: users {snap.users_spawned:,}, "
                f"requests {requests:,}, errors {errors:,}, {snap.recent_rps:,.1f} req/s, "
                f"p99 {'-' if p99 is None else f'{p99:,.0f}'} ms"
            )
            sys.stdout.flush()

    def final(self, outcome: str, error: str | None) -> None:
        self.data.update(phase=outcome, error=error)
        self._write()

    def _write(self) -> None:
        self.data["updated_at"] = time.time()
        write_atomic(self.path, json.dumps(self.data))


@click.command("collect")
@CONFIG_OPTION
@click.option(
    "--run",
    type=click.Path(file_okay=False),
    help="The run record to collect for.  [default: the last one `mmload load` fetched]",
)
@click.option(
    "--prometheus",
    help="Prometheus as the metrics node sees it.  "
    f"[default: {default_of(CollectOptions, 'prometheus')}]",
)
@click.option(
    "--max-log-mb",
    type=float,
    help="Keep the last N MB of each log.  "
    f"[default: {default_of(CollectOptions, 'max_log_mb'):g}]",
)
@click.option("--remote-root", hidden=True, help="Prefix of the hosts' paths (test hosts).")
def collect_cmd(config: str, **flags: Any) -> None:
    """Collect logs (Mattermost, nginx, the master and workers), each app node's config.json
    with its secrets masked on the node, and a Prometheus window of the run into one archive
    beside the run record: <run dir>.collect.tar.gz."""
    from mmload.errors import UserError
    from mmload.lifecycle.collect import collect_run
    from mmload.lifecycle.hosts import reach
    from mmload.lifecycle.remote_load import LoadState

    opts = model_from_flags(CollectOptions, flags)
    reached = reach(config)
    run = opts.run
    if run is None:
        state = LoadState.load(reached.workdir)
        if not state.fetched:
            raise UserError(
                "the last remote run was not fetched yet: `mmload load fetch` first, or --run",
                source=str(reached.workdir / "load.json"),
            )
        run = state.fetched
    run_dir = Path(run)
    if not (run_dir / "run.json").is_file():
        raise UserError("not a run record (no run.json)", source=str(run_dir), field="--run")
    archive, reports = collect_run(
        reached,
        run_dir,
        root=opts.remote_root,
        prometheus=opts.prometheus,
        max_bytes=int(opts.max_log_mb * (1 << 20)),
    )
    for host, report in reports.items():
        missing = report.get("missing") or []
        line = f"{host}: {len(report.get('files') or [])} file(s)"
        if "prometheus" in report:
            line += f", Prometheus {report['prometheus'].get('series', 0)} metric(s)"
        if missing:
            line += "; not found: " + ", ".join(f"{m['path']} ({m['why']})" for m in missing)
        click.echo(line)
    click.echo(f"archive: {archive}")


def register(group: click.Group) -> None:
    """Add these commands to group."""
    group.add_command(ssh_cmd)
    group.add_command(db_cmd)
    group.add_command(load_group)
    group.add_command(collect_cmd)
