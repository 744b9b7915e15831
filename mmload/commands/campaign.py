"""CLI commands of the ceiling campaign: `campaign plan/run/status/report`, `advise` (and
`architectures --docs`)."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from mmload.commands.common import default_of, model_from_flags
from mmload.config.campaign import AdviseOptions
from mmload.errors import RunFailed, UserError

EXISTING = click.Path(exists=True, path_type=Path)


def result_options(f: click.decorators.FC) -> click.decorators.FC:
    """--results (run records, a campaign's folder) and --data (Mattermost's published data)."""
    f = click.option(
        "--data",
        "data",
        multiple=True,
        type=EXISTING,
        metavar="DIR",
        help="Mattermost's published ceiling data (load-test-ng reports, read by `import ltng`), "
        "e.g. mattermost-performance-reports/ceiling-tests/v2; repeatable",
    )(f)
    return click.option(
        "--results",
        "results",
        multiple=True,
        type=EXISTING,
        metavar="PATH",
        help="ceiling run records (a folder of them, as `mmload ceiling` reads); repeatable",
    )(f)


def write_architecture_docs(out: Path, results: tuple[Path, ...], data: tuple[Path, ...]) -> None:
    """`architectures --docs OUT`: the pages, validated by the results given (if any)."""
    from mmload.campaign.evidence import read_measurements
    from mmload.campaign.pages import write_docs

    measurements, skipped = read_measurements([*results, *data]) if results or data else ([], [])
    for path in write_docs(out, measurements, skipped):
        click.echo(f"wrote {path}", err=True)


def result_paths(results: tuple[Path, ...], data: tuple[Path, ...]) -> list[Path]:
    """The paths to read; none given is bad input naming the flags."""
    if not results and not data:
        raise UserError(
            "give ceiling results: --results PATH (run records) or --data DIR (published data)",
            source="command line",
            field="--results",
        )
    return [*results, *data]


@click.command("advise")
@click.option("--users", type=int, required=True, help="Concurrent users to serve.")
@click.option(
    "--headroom",
    metavar="PCT",
    help=f"Margin above --users the measurement must cover, e.g. 30% "
    f"[default: {default_of(AdviseOptions, 'headroom'):g}%]",
)
@click.option("--version", "version", metavar="V", help="Judge this measured version (label).")
@result_options
@click.option("--json", "as_json", is_flag=True, help="Print the advice as JSON.")
def advise_cmd(
    users: int,
    headroom: str | None,
    version: str | None,
    results: tuple[Path, ...],
    data: tuple[Path, ...],
    as_json: bool,
) -> None:
    """The cheapest measured architecture ($/h) whose supported users cover USERS + headroom.

    Exit 0 with the pick and its evidence; 1 when no measurement covers the request (the
    table of what was measured is still printed); 2 on bad input.
    """
    from mmload.campaign.advise import advise, shortfall
    from mmload.campaign.evidence import read_measurements

    opts = model_from_flags(
        AdviseOptions, {"users": users, "headroom": headroom, "version": version}
    )
    measurements, skipped = read_measurements(result_paths(results, data))
    advice = advise(measurements, opts, skipped)
    click.echo(json.dumps(advice.document(), indent=2) if as_json else advice.markdown(), nl=False)
    if as_json:
        click.echo()
    if advice.pick is None:
        raise RunFailed(shortfall(advice))


@click.group("campaign")
def campaign_group() -> None:
    """An ESR ceiling campaign: versions x architectures x repeats x scenarios."""


@campaign_group.command("plan")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_cmd(file: Path, as_json: bool) -> None:
    """The deployments and runs of FILE, the expected wall time and cost; nothing is applied.

    Exit 0 within the budget cap; 1 when the cost exceeds it (the plan is still printed);
    2 on bad input (one line naming the file and field path).
    """
    from mmload.campaign.plan import build_plan

    plan = build_plan(file)
    click.echo(json.dumps(plan.document(), indent=2) if as_json else plan.markdown(), nl=False)
    if as_json:
        click.echo()
    refuse_over_budget(plan, file)


def refuse_over_budget(plan: Any, file: Path) -> None:
    """The budget cap: a plan costing more is refused (exit 1), before anything starts."""
    if not plan.within_budget:
        raise RunFailed(
            f"{file}: budget_usd: the plan costs ${plan.cost_usd:,.2f}, over the cap of "
            f"${plan.campaign.budget_usd:,.2f}: refused"
        )


@campaign_group.command("run")
@click.argument("file", type=click.Path(path_type=Path))
def run_cmd(file: Path) -> None:
    """Run FILE's campaign: its plan checked against the budget first, then every run, up to
    `concurrency` deployments at once, each step in <output_dir>/campaign-state.json. Run it
    again to resume after the last finished run.

    Exit 0 when every run finished; 1 over budget or when a run failed (the others still ran);
    2 on bad input; 130 when interrupted (SIGINT/SIGTERM: the runs in progress keep their data
    and run again on resume).
    """
    from mmload.campaign.plan import build_plan
    from mmload.campaign.run import CampaignRun

    plan = build_plan(file)
    refuse_over_budget(plan, file)
    if not plan.campaign.simulated:
        raise UserError(
            "campaign run drives simulator campaigns only so far (versions with sim:, "
            "architectures with sim:); plan this one with `mmload campaign plan`",
            source=str(file),
            field="versions",
        )
    runner = CampaignRun(plan, lambda line: click.echo(line))
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: runner.interrupt())
    try:
        status = runner.execute()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(f"campaign {plan.campaign.name}: {status}; `mmload campaign report {file}`")
    if status == "interrupted":
        sys.exit(130)
    if status != "finished":
        raise RunFailed(f"{file}: some runs failed (see `mmload campaign status {file}`)")


@campaign_group.command("status")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_cmd(file: Path, as_json: bool) -> None:
    """Progress of FILE's campaign (runs by status, what runs now) and the money spent."""
    from mmload.campaign.plan import build_plan
    from mmload.campaign.state import read_state
    from mmload.campaign.status import status_document, status_text

    plan = build_plan(file)
    doc = status_document(plan, read_state(plan.output_dir))
    click.echo(json.dumps(doc, indent=2) if as_json else status_text(doc), nl=not as_json)


@campaign_group.command("report")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--out", metavar="DIR", help="Folder of the report [default: <output_dir>/report].")
@click.option("--format", "fmt", metavar="FMTS", help="md, html, json (comma-separated).")
def report_cmd(file: Path, out: str | None, fmt: str | None) -> None:
    """The publishable table of FILE's campaign (architecture x version: mean supported users,
    each run, spread, verdict against the previous version), as Markdown, HTML and JSON."""
    from mmload.campaign.plan import build_plan
    from mmload.campaign.report import build_view
    from mmload.campaign.state import read_state
    from mmload.config.report import ReportOptions
    from mmload.report.output import emit, parse_formats

    plan = build_plan(file)
    data = read_state(plan.output_dir)
    if data is None:
        raise UserError(
            f"has not run yet (no state in {plan.output_dir}): `mmload campaign run {file}`",
            source=str(file),
        )
    out = out or str(plan.output_dir / "report")
    formats = parse_formats(fmt, out, ReportOptions()) or ["md", "html", "json"]
    for path in emit(build_view(plan, data), formats, out):
        click.echo(f"wrote {path}", err=True)


def register(group: click.Group) -> None:
    """Add this stage's commands to group."""
    group.add_command(advise_cmd)
    group.add_command(campaign_group)
