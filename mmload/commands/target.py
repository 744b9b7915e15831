"""CLI commands about the target server itself: ``mmload target check``."""

from __future__ import annotations

from typing import Any

import click

from mmload.commands.common import default_of, model_from_flags
from mmload.config.loader import read_token_file
from mmload.config.scenario import load_scenario
from mmload.config.target import TargetCheckOptions
from mmload.errors import RunFailed

FLAGS = {"admin_token_file": "--admin-token-file"}


@click.group("target")
def target_group() -> None:
    """The target server: what it is and what it will do to a storm."""


@target_group.command("check")
@click.option("--target", required=True, help="Base URL of the Mattermost server.")
@click.option(
    "--admin-token-file",
    help="A file holding a system admin's token (read, never printed): the settings that "
    "decide a storm (GET /api/v4/config).",
)
@click.option(
    "--scenario",
    help="The storm to judge the settings against (built-in name or file)  "
    f"[default: {default_of(TargetCheckOptions, 'scenario')}].",
)
@click.option("--scale", type=float, help="Scale of the scenario, as `mmload run --scale`.")
def check_cmd(**flags: Any) -> None:
    """Check a target before a storm: reachability and TLS, version and build, license, and with
    --admin-token-file the rate limiter, proxy header, session lengths, team size, database pool
    and cluster size, judged against --scenario.

    Exit codes: 0 nothing blocking; 1 the storm as planned would measure something else than
    the server (a rate limiter, sessions expiring during the run, a certificate the users
    refuse) or the target is unreachable; 2 bad input.
    """
    from mmload.load.storm_check import findings, storm_of
    from mmload.load.target import gather

    opts = model_from_flags(TargetCheckOptions, flags, FLAGS)
    scenario, _path = load_scenario(opts.scenario)
    scenario = scenario.scaled(opts.scale)
    token = None
    if opts.admin_token_file is not None:
        token = read_token_file(opts.admin_token_file, "--admin-token-file")
    facts = gather(opts.target, token)
    storm = storm_of(scenario)
    click.echo(f"target {facts.url}")
    for line in describe(facts):
        click.echo(f"  {line}")
    click.echo(
        f"storm {storm.name}: {storm.users:,} logins in {storm.arrival_s:g} s "
        f"(peak {storm.peak_per_s:.1f}/s), run {storm.run_s:g} s"
    )
    found = findings(facts, storm)
    for f in found:
        click.echo(f"{'warning' if f.blocking else 'note'}: {f.text}")
    blocking = sum(f.blocking for f in found)
    if blocking:
        raise RunFailed(
            f"{blocking} warning(s) above: the storm as planned would not measure the server"
        )
    click.echo("nothing blocking")


def describe(facts: Any) -> list[str]:
    """The facts as lines: reachable, TLS, version, license."""
    ping = facts.ping
    status = ", ".join(
        f"{k.removesuffix('_status')} {ping[k]}"
        for k in ("database_status", "filestore_status")
        if k in ping
    )
    lines = [f"reachable: ping {ping.get('status', '?')}" + (f" ({status})" if status else "")]
    lines.append(f"TLS: {facts.tls}")
    build = f" build {facts.build}" if facts.build else ""
    lines.append(
        f"server: {facts.version or 'unknown version'}{build} (X-Version-Id {facts.version_id})"
    )
    lic = facts.license or {}
    if str(lic.get("IsLicensed", "")).lower() == "true":
        lines.append(f"license: {lic.get('SkuShortName') or 'licensed'}")
    elif lic:
        lines.append("license: none (Team Edition features)")
    else:
        lines.append("license: not answered")
    return lines


def register(group: click.Group) -> None:
    """Add this stage's commands to group."""
    group.add_command(target_group)
