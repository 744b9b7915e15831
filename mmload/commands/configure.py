"""CLI commands of the configure stage: `mmload configure`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mmload.commands.common import CONFIG_OPTION, console, interactive
from mmload.config.components import registry


def split_tags(values: tuple[str, ...]) -> list[str]:
    """``--tags a,b --tags c`` → ``[a, b, c]``."""
    return [t.strip() for v in values for t in v.split(",") if t.strip()]


@click.command("configure")
@CONFIG_OPTION
@click.option(
    "--outputs",
    type=click.Path(dir_okay=False),
    help="outputs.json (default: <working_dir>/<name>/outputs.json)",
)
@click.option(
    "--tags",
    multiple=True,
    help=f"only these roles ({', '.join(registry().role_tags)})",
)
@click.option("--skip-tags", multiple=True, help="skip these roles")
@click.option("--limit", help="only these hosts (Ansible pattern)")
@click.option(
    "--seed",
    "seed_file",
    type=click.Path(dir_okay=False, exists=True),
    help="the JSONL from `mmload seed`, imported with mmctl (with --tags seed)",
)
@click.option("--check", is_flag=True, help="dry run: report what would change")
def configure_cmd(
    config: str,
    outputs: str | None,
    tags: tuple[str, ...],
    skip_tags: tuple[str, ...],
    limit: str | None,
    seed_file: str | None,
    check: bool,
) -> None:
    """Configure the provisioned machines with Ansible: Mattermost, nginx, metrics, agents."""
    from mmload.configure.progress import PlainReporter, RichReporter
    from mmload.configure.run import configure

    reporter = RichReporter(console) if interactive() else PlainReporter(sys.stdout)
    result = configure(
        Path(config),
        outputs_path=Path(outputs) if outputs else None,
        tags=split_tags(tags),
        skip_tags=split_tags(skip_tags),
        limit=limit,
        seed_file=Path(seed_file) if seed_file else None,
        check=check,
        reporter=reporter,
        notice=click.echo,
    )
    changed = result.total("changed")
    click.echo(
        f"configured: {len(result.stats.get('processed', {}))} hosts, {changed} changes"
        + (" (check mode)" if check else "")
    )


def register(group: click.Group) -> None:
    """Add this stage's commands to group."""
    group.add_command(configure_cmd)
