"""CLI commands that reach a deployment's machines: `mmload ssh` and `mmload db`."""

from __future__ import annotations

import os
import sys

import click

from mmload.commands.common import CONFIG_OPTION, interactive


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


def register(group: click.Group) -> None:
    """Add these commands to group."""
    group.add_command(ssh_cmd)
    group.add_command(db_cmd)
