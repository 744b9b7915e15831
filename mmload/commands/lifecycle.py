"""CLI commands of the lifecycle: `mmload up`, `preflight`, `status`, `down` and `sweep`."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from mmload.commands.common import console, err_console, interactive
from mmload.commands.infra import CONFIG_OPTION
from mmload.errors import RunFailed, UserError


@contextmanager
def aws_calls(what: str) -> Iterator[None]:
    """An AWS failure (no credentials, endpoint unreachable, access denied) as one line."""
    from botocore.exceptions import BotoCoreError, ClientError

    from mmload.lifecycle.aws import aws_error

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise RunFailed(f"{what}: {aws_error(exc)}") from None


def _deployment(config: str):
    from mmload.provision.deploy import load_deployment

    dep = load_deployment(config)
    return dep, dep.workdir


def _hourly(dep) -> float:
    from mmload.config.catalog import load_prices
    from mmload.provision.sizing import cost_lines, hourly_total, resolve

    new_vpc = dep.network.existing_vpc_id is None
    lines = cost_lines(resolve(dep), dep.database.engine, load_prices(), nat_gateway=new_vpc)
    return hourly_total(lines)


# -- up ----------------------------------------------------------------------------------------


@click.command("up")
@CONFIG_OPTION
@click.option("--yes", is_flag=True, help="Apply the plan without asking.")
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="STEP[,STEP]",
    help="Run only these steps: preflight, provision, configure, seed.",
)
def up_cmd(config: str, yes: bool, only: tuple[str, ...]) -> None:
    """Preflight, provision (plan, cost, confirm, apply), configure and seed, resumably.

    Each finished step is recorded in <working dir>/up-state.json; running `up` again continues
    with the first unfinished step. Ctrl-C stops cleanly and says how to continue.
    """
    from mmload.lifecycle.pipeline import Interrupted, StepLines, Up, parse_steps

    steps = parse_steps(only)
    dep, workdir = _deployment(config)
    live = interactive()
    again = f"mmload up -c {config}" + (f" --only {','.join(steps)}" if only else "")
    if yes:
        again += " --yes"
    confirm = (lambda text: click.confirm(text, default=False)) if live else None
    run = Up(Path(config), dep, workdir, StepLines(console, live), yes=yes, confirm=confirm)
    signal.signal(signal.SIGTERM, _terminated)  # a TERM stops as cleanly as Ctrl-C
    try:
        with aws_calls("preflight"):
            ran = run.run(steps, again)
    except Interrupted as exc:
        click.echo(f"mmload: {exc.message()}", err=True)
        raise click.exceptions.Exit(130) from None
    if ran:
        console.print(f"up: {', '.join(ran)} finished; state in {workdir}", highlight=False)


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# -- preflight ---------------------------------------------------------------------------------


@click.command("preflight")
@CONFIG_OPTION
def preflight_cmd(config: str) -> None:
    """Check credentials, vCPU quotas, instance offerings, license, checksum, CIDRs, terraform.

    One PASS/FAIL line per check, with the fix; exits 1 when any check fails.
    """
    from mmload.lifecycle.aws import Aws
    from mmload.lifecycle.preflight import run_preflight

    dep, workdir = _deployment(config)
    result = run_preflight(
        dep,
        Aws.for_deployment(dep),
        workdir,
        config,
        on_check=lambda c: console.print(c.line(), markup=False, highlight=False, soft_wrap=True),
    )
    if not result.ok:
        raise RunFailed(f"preflight: {len(result.failed())} of {len(result.checks)} checks failed")
    console.print(f"preflight: all {len(result.checks)} checks passed", highlight=False)


# -- status ------------------------------------------------------------------------------------


@click.command("status")
@CONFIG_OPTION
def status_cmd(config: str) -> None:
    """What of the deployment exists in AWS (by its tags), since when, $/h and $ accrued, and
    the time left before its TTL; plus the steps `up` has finished."""
    from mmload.lifecycle.aws import Aws
    from mmload.lifecycle.pipeline import UpState
    from mmload.lifecycle.status import deployment_status

    dep, workdir = _deployment(config)
    with aws_calls("status"):
        status = deployment_status(Aws.for_deployment(dep), dep.name, _hourly(dep))
    for line in status.lines():
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    state = UpState.load(workdir)
    if state.finished:
        done = ", ".join(f"{s} {t}" for s, t in state.finished.items())
        console.print(f"up: finished {done}", highlight=False)
    if state.stopped:
        s = state.stopped
        console.print(
            f"up: stopped in {s['step']} at {s['at']} ({s.get('why')}); `mmload up -c {config}` "
            "continues",
            highlight=False,
        )


# -- down --------------------------------------------------------------------------------------


@click.command("down")
@CONFIG_OPTION
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def down_cmd(config: str, yes: bool) -> None:
    """Destroy the deployment, then check through the tagging API that nothing tagged
    mmload:deployment=NAME is left (listing anything that is; exit 1)."""
    from mmload.lifecycle.aws import Aws
    from mmload.lifecycle.pipeline import UpState
    from mmload.lifecycle.status import deployment_resources
    from mmload.lifecycle.sweep import Sweeper
    from mmload.provision.deploy import TerraformProgress, prepare

    dep, workdir = _deployment(config)
    if not yes:
        if not interactive():
            raise UserError("down needs --yes when not run from a terminal", field="--yes")
        click.confirm(f"Destroy every resource of deployment {dep.name!r}?", abort=True)
    progress = TerraformProgress(console, "destroy", None, live=interactive())
    prepared = prepare(config, progress)
    with progress.running():
        prepared.driver.init()
        prepared.driver.destroy()
    UpState.load(workdir).forget()
    aws = Aws.for_deployment(dep)
    with aws_calls("down: untagged file buckets"):  # an interrupted apply's, not in the state
        Sweeper(
            aws, dep.name, lambda line: console.print(f"down: {line}", highlight=False)
        ).buckets([])
    with aws_calls("down: checking the tags"):
        left = deployment_resources(aws, dep.name)
    if left:
        for r in left:
            err_console.print(f"left: {r.arn}", highlight=False, soft_wrap=True)
        raise RunFailed(
            f"down: {len(left)} resources tagged mmload:deployment={dep.name} are left "
            f"(listed above); `mmload sweep --yes` removes them once expired"
        )
    console.print(
        f"down: nothing tagged mmload:deployment={dep.name} is left in {dep.region}",
        highlight=False,
    )


# -- sweep -------------------------------------------------------------------------------------


@click.command("sweep")
@click.option(
    "--region",
    default=None,
    help="AWS region [default: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1].",
)
@click.option("--profile", default=None, help="AWS named profile [default: the default chain].")
@click.option(
    "--endpoint-url",
    default=None,
    help="An AWS-compatible emulator (moto, LocalStack) instead of AWS.",
)
@click.option("--yes", is_flag=True, help="Destroy what is listed (default: only list).")
def sweep_cmd(region: str | None, profile: str | None, endpoint_url: str | None, yes: bool) -> None:
    """List every deployment whose mmload:expires-at tag has passed, in the account and region,
    from the tags alone (no working dir needed); with --yes, destroy each one."""
    import re

    from mmload.lifecycle.aws import Aws
    from mmload.lifecycle.sweep import find_expired, sweep

    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    region = region or "us-east-1"
    if not re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-\d", region):
        raise UserError(f"{region!r} is not an AWS region", source="command line", field="--region")
    if endpoint_url and not re.fullmatch(r"https?://\S+", endpoint_url):
        raise UserError("not an http(s) URL", source="command line", field="--endpoint-url")
    from datetime import UTC, datetime

    aws = Aws(region, profile, endpoint_url)
    now = datetime.now(UTC)
    with aws_calls("sweep"):
        expired = find_expired(aws, now)
    if not expired:
        console.print(f"sweep: no expired deployment in {region}", highlight=False)
        return
    for dep in expired:
        console.print(dep.line(now), markup=False, highlight=False, soft_wrap=True)
    if not yes:
        console.print(
            f"sweep: {len(expired)} expired deployment(s); `mmload sweep --yes` destroys them",
            highlight=False,
        )
        return
    leftovers: dict[str, int] = {}
    for dep in expired:
        with aws_calls(f"sweep {dep.name}"):
            left = sweep(aws, dep.name, lambda text, n=dep.name: _say(n, text))
        if left:
            leftovers[dep.name] = len(left)
            for r in left:
                err_console.print(f"left: {r.arn}", highlight=False, soft_wrap=True)
        else:
            console.print(f"{dep.name}: destroyed; nothing tagged is left", highlight=False)
    if leftovers:
        parts = ", ".join(f"{n} ({c} resources)" for n, c in leftovers.items())
        raise RunFailed(f"sweep: not everything could be removed: {parts}")


def _say(name: str, text: str) -> None:
    console.print(f"{name}: {text}", markup=False, highlight=False, soft_wrap=True)


def register(group: click.Group) -> None:
    """Add these commands to group."""
    for cmd in (up_cmd, preflight_cmd, status_cmd, down_cmd, sweep_cmd):
        group.add_command(cmd)
