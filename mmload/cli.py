"""The ``mmload`` command line: a thin Click app that parses, calls a stage, and prints.

Every command lives in ``mmload/commands/<stage>.py`` and registers itself on the group.
Errors the user can fix (``UserError``, bad flags) print one line and exit 2; a failed external
step (``RunFailed``) prints its message and exits 1. No traceback reaches the user.
"""

from __future__ import annotations

import sys

import click

from mmload import __version__
from mmload.commands import (
    campaign,
    configure,
    infra,
    lifecycle,
    load,
    remote,
    report,
    sim,
    target,
)
from mmload.errors import RunFailed, UserError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="mmload")
def cli() -> None:
    """Load-test Mattermost: provision AWS, configure it, run Sev0 login storms and ESR ceiling
    tests with Locust, and report. Without AWS, `mmload sim` is the target."""


for stage in (sim, load, target, report, infra, configure, remote, lifecycle, campaign):
    stage.register(cli)


def err(line: str) -> None:
    """Print one error line to stderr."""
    click.echo(f"mmload: error: {line}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and map every failure to one line and an exit code."""
    try:
        rv = cli.main(args=argv, prog_name="mmload", standalone_mode=False)
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx:  # bare `mmload`: show help
            click.echo(exc.ctx.get_help())
            sys.exit(0)
        cmd = exc.ctx.command_path if exc.ctx else "mmload"
        err(exc.format_message() if cmd == "mmload" else f"{cmd}: {exc.format_message()}")
        sys.exit(2)
    except UserError as exc:
        err(exc.one_line())
        sys.exit(2)
    except RunFailed as exc:
        err(str(exc))
        sys.exit(1)
    except click.exceptions.Abort:
        err("aborted")
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        err(exc.format_message())
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
