"""CLI commands of the load stage: ``mmload run``, ``mmload worker``, ``mmload demo``."""

from __future__ import annotations

import inspect
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from mmload import record
from mmload.commands.common import (
    console,
    default_of,
    err_console,
    interactive,
    model_from_flags,
)
from mmload.config.scenario import (
    SCENARIO_DIR,
    DemoOptions,
    RunOptions,
    WorkerOptions,
    apply_options,
    load_scenario,
)
from mmload.errors import RunFailed, UserError
from mmload.load.pin import is_loopback
from mmload.record import RunVerdict


def confirm_target(target: str, yes: bool, scenario: Any = None, *, probe: bool = True) -> None:
    """Loading a non-loopback target needs --yes or an interactive confirmation that names the
    target, its version and the load (users, peak login rate). The check resolves the target
    once for the run: its connections go to the addresses judged here. ``probe`` off: the
    target is not reachable from here (a deployment's private address), its version unasked."""
    if yes or is_loopback(target):
        return
    if not sys.stdin.isatty():
        raise UserError(
            f"{target} is not a loopback address: pass --yes to send load to it",
            source="command line",
            field="--target",
        )
    if not click.confirm(confirmation_text(target, scenario, probe=probe), default=False):
        raise click.exceptions.Abort()


def confirmation_text(target: str, scenario: Any = None, *, probe: bool = True) -> str:
    """``Send sev0-login-storm (15,000 users, peak 16.7 logins/s over 15 min) to URL
    (Mattermost 11.7.0 (build 1))?``: what a TAM confirms before loading a real server."""
    from mmload.load.preflight import probe_target

    version = "as the deployment's agents reach it"
    if probe:
        try:
            version = f"Mattermost {probe_target(target, timeout_s=5.0) or 'of unknown version'}"
        except RunFailed as exc:
            version = f"not answering: {exc}"
    load = ""
    if scenario is not None:
        load = f"{scenario.name}"
        if scenario.kind != "ceiling":
            from mmload.load.storm_check import duration, storm_of

            storm = storm_of(scenario)
            load += (
                f" ({storm.users:,} users, peak {storm.peak_per_s:,.1f} logins/s over "
                f"{duration(storm.arrival_s)})"
            )
        else:
            load += f" (ceiling, up to {scenario.ceiling.max_users:,} users)"
        load += " "
    return f"Send {load}to {target} ({version})?"


def _fmt_ms(v: Any) -> str:
    return "-" if v is None else f"{v:,.0f}"


def print_summary(result: Any) -> None:
    """The end-of-run summary: outcome, arrivals, endpoints, SLOs, where the record is."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out = console if interactive() else Console(width=160, highlight=False)
    meta, summary = result.meta, result.summary
    totals = summary["totals"]
    out.print(
        f"[bold]{meta['scenario']['name']}[/bold] against {meta['target']} "
        f"(server {meta.get('server_version') or 'unknown'}): "
        f"outcome [bold]{meta['outcome']}[/bold]"
    )
    arr = totals["arrivals"]
    if arr.get("scheduled"):
        out.print(
            f"arrivals: {arr['scheduled']:,} scheduled, {arr['started']:,} started, "
            f"{arr['loaded']:,} loaded, {arr['failed']:,} failed, {arr['pending']:,} pending; "
            f"websocket {arr['ws_connected']:,}; lag p50 {_fmt_ms(arr['lag_p50_ms'])} ms, "
            f"p99 {_fmt_ms(arr['lag_p99_ms'])} ms; time to loaded p99 "
            f"{_fmt_ms(arr['time_to_loaded_p99_ms'])} ms"
        )
    rec = totals.get("reconnects") or {}
    if rec.get("scheduled"):
        out.print(
            f"reconnects: {rec['scheduled']:,} scheduled, {rec['loaded']:,} done, "
            f"{rec['failed']:,} failed; lag p99 {_fmt_ms(rec['lag_p99_ms'])} ms"
        )
    if meta.get("supported_users") is not None or meta["scenario"]["kind"] == "ceiling":
        ceiling = meta.get("ceiling") or {}
        note = ""
        if not ceiling.get("converged"):
            note = " (did not converge within the time limit)"
        elif ceiling.get("capped"):
            note = " (every SLO held up to max_users: the target supports at least this)"
        out.print(f"supported users: [bold]{meta.get('supported_users')}[/bold]{note}")
    rate = totals["error_rate"]
    out.print(
        f"requests: {totals['requests']:,}, failures {totals['failures']:,}"
        + (f" ({rate:.3%})" if rate is not None else "")
    )
    table = Table(show_edge=False, box=None, pad_edge=False)
    for col in ("endpoint", "count", "fail", "avg ms", "p50 ms", "p99 ms"):
        if col == "endpoint":
            table.add_column(col, overflow="fold", ratio=1)
        else:
            table.add_column(col, justify="right", no_wrap=True, min_width=max(6, len(col)))
    for row in summary["endpoints"]:
        table.add_row(
            row["name"],
            f"{row['count']:,}",
            f"{row['failures']:,}",
            _fmt_ms(row["avg_ms"]),
            _fmt_ms(row["p50_ms"]),
            _fmt_ms(row["p99_ms"]),
        )
    out.print(table)
    classes = totals.get("errors_by_class") or {}
    if classes:
        out.print("errors by class: " + ", ".join(f"{c} {n:,}" for c, n in sorted(classes.items())))
    for v in summary["slos"]:
        mark = {True: "PASS", False: "FAIL", None: "UNMEASURED"}[v["passed"]]
        if v["passed"] is None and v.get("optional"):
            mark += " (optional)"
        val = "-" if v["value"] is None else f"{v['value']:.4g}"
        detail = escape(f" [{v['detail']}]") if v.get("detail") else ""
        out.print(
            f"SLO {v['name']} ({v['source']}): {val} {v['op']} {v['threshold']}: {mark}{detail}"
        )
    verdict = run_verdict(result.meta)
    reasons = "".join(f"\n  - {escape(r)}" for r in verdict.reasons)
    out.print(f"verdict: [bold]{verdict.status}[/bold]{reasons}")
    click.echo(f"run record: {result.run_dir}")


def run_verdict(meta: dict[str, Any]) -> RunVerdict:
    """The run's verdict by the record's one rule (``mmload.record.run_verdict``)."""
    return record.run_verdict(record.parse_meta(meta, "run.json"))


def exit_for(result: Any, fail_on_slo: bool) -> None:
    """The exit code of a finished run: 130 interrupted, 1 aborted by a rule (one line naming
    it) or when an SLO failed or could not be measured (unless ``fail_on_slo`` is off), else 0.
    A failed run raised RunFailed already."""
    if result.meta["outcome"] == "interrupted":
        sys.exit(130)
    if result.meta["outcome"] == "aborted":
        meta = record.parse_meta(result.meta, "run.json")
        raise RunFailed(meta.abort.sentence() if meta.abort else "the run was aborted")
    verdict = run_verdict(result.meta)
    if fail_on_slo and verdict.status == "FAIL":
        raise RunFailed("FAIL: " + "; ".join(verdict.reasons))


def prepared_scenario(scenario_ref: str, opts: RunOptions) -> tuple[Any, Path]:
    """The scenario as a run uses it (local `run` and the remote master alike): loaded, the
    flags applied, and --duration as the whole run (the hold gets what the phases leave)."""
    from mmload.load.population import with_credentials

    scenario, path = load_scenario(scenario_ref)
    scenario = with_credentials(apply_options(scenario, opts), opts)
    if opts.duration is not None:
        from mmload.load.phases import with_total_duration

        scenario = with_total_duration(scenario, opts.duration)
    return scenario, path


def use_source_addresses(addresses: tuple[str, ...], opts: RunOptions) -> None:
    """The local addresses the users send from, round robin by user index (``--source-address``:
    each one bind-tested here and of the target's address family; bad input names the flag);
    none: the system's choice. Only this machine's users: not with remote workers."""
    from mmload.load.pin import PINNED, check_source, host_of, same_family

    if not addresses:
        return
    if opts.remote_workers:
        raise UserError(
            "addresses of this machine: not with --remote-workers (their users send from theirs)",
            source="command line",
            field="--source-address",
        )
    sources = tuple(dict.fromkeys(check_source(a) for a in addresses))
    for source in sources:
        for address in PINNED.addresses(host_of(opts.target)):
            if not same_family(source, address):
                raise UserError(
                    f"{source} cannot reach the target's address {address} (IPv4 and IPv6)",
                    source="command line",
                    field="--source-address",
                )
    PINNED.sources = sources


def execute_run(scenario_ref: str, flags: dict[str, Any], yes: bool) -> Any:
    """Validate, confirm the target, run, print; returns the RunResult."""
    sources = flags.pop("source_addresses", ())
    opts = model_from_flags(RunOptions, flags)
    scenario, path = prepared_scenario(scenario_ref, opts)
    confirm_target(opts.target, yes, scenario)  # resolves the target's host once: pinned
    use_source_addresses(sources, opts)
    from mmload.load.runner import ScenarioRun  # imports Locust (gevent monkey-patching)

    live_ctx = None
    tick: Any = None
    if interactive():
        from rich.live import Live

        from mmload.load.live import render

        live_ctx = Live(console=console, refresh_per_second=2, transient=True)

        def tick(snapshot: Any) -> None:
            live_ctx.update(render(snapshot))
    else:
        from mmload.load.live import PlainProgress

        tick = PlainProgress(lambda line: click.echo(line))

    def announce(run_dir: Path) -> None:
        click.echo(f"run record: {run_dir}")

    def announce_master(address: str, remote: int) -> None:
        err_console.print(
            f"master listening on {address}: waiting for {remote} remote worker(s) "
            f"(`mmload worker --master HOST --master-port PORT`)"
        )

    def warn(line: str) -> None:
        click.echo(f"mmload: warning: {line}", err=True)

    run = ScenarioRun(
        scenario,
        opts,
        scenario_file=str(path),
        on_tick=tick,
        announce=announce,
        announce_master=announce_master,
        warn=warn,
    )
    if live_ctx is not None:
        with live_ctx:
            result = run.execute()
    else:
        result = run.execute()
    print_summary(result)
    return result


def builtin_scenarios() -> str:
    """The built-in scenarios' names, for --help."""
    return ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))) or "none"


def fail_on_slo_option(f: Any) -> Any:
    """--fail-on-slo/--no-fail-on-slo, shared by run and demo."""
    return click.option(
        "--fail-on-slo/--no-fail-on-slo",
        default=True,
        show_default=True,
        help="Exit 1 when an SLO failed or could not be measured (the record is kept either way).",
    )(f)


def register(group: click.Group) -> None:
    """Add this stage's commands to group."""

    @group.command("run")
    @click.argument("scenario")
    @click.option(
        "--target", required=True, help="Base URL of the Mattermost server (or `mmload sim`)."
    )
    @click.option(
        "--scale", type=float, help="Scale users and time together (0.1: 1,500 users in 90 s)."
    )
    @click.option(
        "--users",
        type=int,
        help="Users (overrides the scenario, after --scale; ceiling: the most to try).",
    )
    @click.option(
        "--duration",
        type=float,
        help="The WHOLE run in seconds: arrivals (and herd phases) plus the hold, which gets "
        "the rest (ceiling: the time limit).",
    )
    @click.option(
        "--hold",
        type=float,
        help="Seconds everyone stays connected after the last arrival (overrides hold_s).",
    )
    @click.option("--workers", type=int, help="Local Locust worker processes (0: one process).")
    @click.option(
        "--remote-workers",
        type=int,
        help="`mmload worker` agents to wait for (use with --master-bind/--master-port).",
    )
    @click.option("--label", help="A label for the run, e.g. the ESR under test.")
    @click.option(
        "--architecture", help="The architecture under test (groups runs in `mmload ceiling`)."
    )
    @click.option(
        "--out",
        help=f"Parent folder of the run record.  [default: {default_of(RunOptions, 'out')}]",
    )
    @click.option("--prometheus", help="Prometheus base URL for server-side SLOs.")
    @click.option(
        "--rate-cap",
        "--max-rps",
        "rate_cap",
        type=float,
        help="Hard cap on requests per second for the whole run (--max-rps: the same cap).",
    )
    @click.option(
        "--max-users",
        type=int,
        help="Hard cap on users at once (after --scale and --users; ceiling: its max_users).",
    )
    @click.option("--master-bind", help="Address the master listens on for remote workers.")
    @click.option("--master-port", type=int, help="Port the master listens on (0: free port).")
    @click.option(
        "--source-address",
        "source_addresses",
        multiple=True,
        help="A local address to send from (repeat it: users are spread over them round robin, "
        "HTTP and WebSocket; e.g. past a rate limiter keyed by address).",
    )
    @click.option(
        "--credentials",
        help="The customer's users: CSV login_id,password[,method][,totp_secret] or JSONL "
        "(docs/customer-sev0.md); never echoed or recorded (the record names each user by a "
        "salted hash of its login id).",
    )
    @click.option(
        "--credentials-salt-file",
        help="The salt of those names (hex, 0600)  [default: <credentials>.salt, made once].",
    )
    @click.option("--yes", is_flag=True, help="Do not ask before loading a non-loopback target.")
    @fail_on_slo_option
    def run_cmd(scenario: str, yes: bool, fail_on_slo: bool, **flags: Any) -> None:
        """Run SCENARIO (a built-in name, or a YAML file) against a target.

        Writes a new run record under --out and prints its path. Ctrl-C stops cleanly and keeps
        what was measured (outcome: interrupted). Exit codes: 0 every SLO passed, 1 an SLO
        failed or could not be measured (see --no-fail-on-slo), the run failed, or an abort
        rule of the scenario stopped it (outcome: aborted), 2 bad input, 130 interrupted.
        """
        result = execute_run(scenario, flags, yes)
        exit_for(result, fail_on_slo)

    run_cmd.help = inspect.cleandoc(run_cmd.help or "") + (
        f"\n\nBuilt-in scenarios: {builtin_scenarios()}."
    )

    @group.command("worker")
    @click.option("--master", "master_host", required=True, help="Host of the `mmload run` master.")
    @click.option(
        "--master-port",
        type=int,
        default=default_of(WorkerOptions, "master_port"),
        show_default=True,
        help="The master's port (printed by `mmload run --remote-workers`).",
    )
    @click.option(
        "--locustfile",
        type=click.Path(exists=True, dir_okay=False),
        help="The scenario's custom locustfile, if it names one.",
    )
    @click.option(
        "--population",
        type=click.Path(dir_okay=False),
        help="Who logs in, with the password (JSON, mode 0600; `mmload run` and `mmload load "
        "start` write it for their workers).  [default: $MMLOAD_POPULATION_FILE, else "
        "~/.mmload/population.json]",
    )
    @click.option(
        "--source-address",
        "source_addresses",
        multiple=True,
        help="A local address this agent's users send from (repeatable: round robin by user "
        "index, HTTP and WebSocket; each must be bindable here).",
    )
    @click.option("--with-parent", is_flag=True, hidden=True)
    def worker_cmd(
        master_host: str,
        master_port: int,
        locustfile: str | None,
        population: str | None,
        source_addresses: tuple[str, ...],
        with_parent: bool,
    ) -> None:
        """Run users for a remote `mmload run` master (a load agent). The population's password
        never comes from the master: the worker reads it from its own file."""
        from mmload.load.pin import check_source
        from mmload.load.worker import run_worker

        flags = {
            "master_host": master_host,
            "master_port": master_port,
            "locustfile": locustfile,
            "population": population,
            "source_addresses": list(source_addresses),
        }
        opts = model_from_flags(WorkerOptions, flags, {"master_host": "--master"})
        sources = tuple(dict.fromkeys(check_source(a) for a in opts.source_addresses))
        run_worker(
            opts.master_host,
            opts.master_port,
            opts.locustfile,
            with_parent,
            opts.population,
            sources=sources,
        )

    @group.command("population")
    @click.argument("scenario")
    @click.option("--credentials", required=True, help="The customer's users (as `run`).")
    @click.option(
        "--credentials-salt-file",
        help="The salt of the record names  [default: <credentials>.salt, made once].",
    )
    @click.option(
        "--out",
        required=True,
        type=click.Path(dir_okay=False),
        help="The population file to write (0600), for `mmload worker --population`.",
    )
    def population_cmd(
        scenario: str, credentials: str, credentials_salt_file: str | None, out: str
    ) -> None:
        """Write the population file of SCENARIO with the customer's users, for `mmload
        worker` agents of a `mmload run --remote-workers N --credentials F` master: run it
        beside the master (the same file and salt), copy the file to each agent (`scp -p`,
        owner only). Its content is never printed."""
        from mmload.load.population import with_credentials, write_population

        flags = {"target": "http://127.0.0.1", "credentials": credentials}
        flags["credentials_salt_file"] = credentials_salt_file
        opts = model_from_flags(RunOptions, flags)
        loaded, _ = load_scenario(scenario)
        population = with_credentials(loaded, opts).population
        path = Path(out).expanduser()
        try:
            write_population(path, population)
        except OSError as exc:
            raise UserError(
                f"cannot write: {exc.strerror}", source=str(path), field="--out"
            ) from None
        summary = population.accounts_summary
        assert summary is not None
        click.echo(f"wrote {path} (0600): {summary.count:,} users, salt {summary.salt_id}")

    @group.command("demo")
    @click.option(
        "--scale",
        type=float,
        default=default_of(DemoOptions, "scale"),
        show_default=True,
        help=f"Scale of {default_of(DemoOptions, 'scenario')}.",
    )
    @click.option(
        "--hold",
        type=float,
        default=default_of(DemoOptions, "hold"),
        show_default=True,
        help="Seconds everyone stays connected after the last arrival.",
    )
    @click.option(
        "--out",
        default=default_of(DemoOptions, "out"),
        show_default=True,
        help="Parent folder of the record.",
    )
    @fail_on_slo_option
    def demo_cmd(scale: float, hold: float, out: str, fail_on_slo: bool) -> None:
        """Start the simulator, run the Sev0 login storm at a small scale, print the summary
        (exit codes as `mmload run`)."""
        from mmload.sim.launcher import running_sim

        opts = model_from_flags(DemoOptions, {"scale": scale, "hold": hold, "out": out})
        scenario, _ = load_scenario(opts.scenario)
        users = max(1, int(scenario.users * opts.scale) + 10)
        err_console.print(f"starting the simulator ({users:,} users)…")
        log = Path(tempfile.gettempdir()) / "mmload-demo-sim.log"
        with running_sim(users=users, log_path=log, start_timeout=120) as sim:
            err_console.print(
                f"simulator at {sim.url}; running {opts.scenario} at scale {opts.scale}"
            )
            result = execute_run(
                opts.scenario,
                {"target": sim.url, "scale": opts.scale, "hold": opts.hold, "out": opts.out},
                yes=True,
            )
        exit_for(result, fail_on_slo)
