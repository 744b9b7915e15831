"""CLI commands of the sim stage: `mmload sim` (the simulator) and `mmload seed` (bulk import)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from mmload.commands.common import default_of, model_from_flags
from mmload.config.loader import read_token_file, read_yaml, validate_model
from mmload.config.sim import NAMED_PROFILES, OpenIdSettings, PopulationSpec, Profile, SimSettings
from mmload.errors import UserError

POPULATION_FLAGS = (
    "users",
    "teams",
    "channels_per_team",
    "channels_joined",
    "posts_per_channel",
    "seed",
    "password",
)
DEFAULT_PROFILE = default_of(SimSettings, "profile_name")
OPENID_SECRET_ENV = "MMLOAD_SIM_OPENID_SECRET"
SIM_FLAGS = {  # SimSettings fields whose flag is not spelt like the field
    "ws_auth_timeout_s": "--ws-auth-timeout",
    "ws_ping_interval_s": "--ws-ping-interval",
    "database_url": "--database",
}


def population_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The population flags shared by `sim` and `seed` (defaults live in PopulationSpec)."""
    d = PopulationSpec.model_fields
    opts = [
        click.option("--users", type=int, help=f"Number of users [default: {d['users'].default}]."),
        click.option("--teams", type=int, help=f"Number of teams [default: {d['teams'].default}]."),
        click.option(
            "--channels-per-team",
            type=int,
            help="Open channels per team incl. town-square and off-topic "
            f"[default: {d['channels_per_team'].default}].",
        ),
        click.option(
            "--channels-joined",
            type=int,
            help="Extra channels each user joins besides the two defaults "
            f"[default: {d['channels_joined'].default}].",
        ),
        click.option(
            "--posts-per-channel",
            type=int,
            help=f"Seed posts per channel [default: {d['posts_per_channel'].default}].",
        ),
        click.option(
            "--seed", type=int, help=f"Seed of every generated id [default: {d['seed'].default}]."
        ),
        click.option(
            "--password",
            type=str,
            help=f"Every user's password [default: {d['password'].default}].",
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def population_from_flags(values: dict[str, Any]) -> PopulationSpec:
    """The population the flags describe (a flag not given keeps the model's default)."""
    return model_from_flags(PopulationSpec, {k: values.get(k) for k in POPULATION_FLAGS})


def load_profile(name: str | None, path: str | None) -> tuple[str, Profile]:
    """A named profile, or a YAML file (optionally ``extends: <name>`` plus overrides)."""
    if path is None:
        key = name or DEFAULT_PROFILE
        return key, NAMED_PROFILES[key].model_copy(deep=True)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise UserError("expected a mapping at the top level", source=path)
    base_name = data.pop("extends", name)
    base: dict[str, Any] = {}
    if base_name is not None:
        if base_name not in NAMED_PROFILES:
            known = ", ".join(NAMED_PROFILES)
            raise UserError(
                f"unknown profile {base_name!r} (known: {known})", source=path, field="extends"
            )
        base = NAMED_PROFILES[base_name].model_dump()
    merged = {**base, **data}
    profile = validate_model(Profile, merged, path)
    return Path(path).stem, profile


@click.command("sim")
@click.option(
    "--host",
    default=default_of(SimSettings, "host"),
    show_default=True,
    help="Address to listen on.",
)
@click.option(
    "--port",
    type=int,
    default=default_of(SimSettings, "port"),
    show_default=True,
    help="HTTP + WebSocket port (0: a free port; the URL printed says which).",
)
@click.option(
    "--metrics-port",
    type=int,
    default=default_of(SimSettings, "metrics_port"),
    show_default=True,
    help="Prometheus /metrics port (0: a free port).",
)
@click.option("--no-metrics", is_flag=True, help="Do not serve /metrics.")
@population_options
@click.option(
    "--profile",
    "profile_name",
    type=click.Choice(list(NAMED_PROFILES)),
    help=f"Server-cost profile [default: {DEFAULT_PROFILE}]; see docs/simulator.md.",
)
@click.option(
    "--profile-file",
    type=click.Path(dir_okay=False),
    help="A custom profile in YAML (may say `extends: <profile>`).",
)
@click.option(
    "--ws-auth-timeout",
    type=float,
    help="Seconds before an unauthenticated WebSocket is closed "
    f"[default: {default_of(SimSettings, 'ws_auth_timeout_s'):g}].",
)
@click.option(
    "--ws-ping-interval",
    type=float,
    help="Seconds between server ping frames "
    f"[default: {default_of(SimSettings, 'ws_ping_interval_s'):g}].",
)
@click.option(
    "--database",
    help="postgresql://… : keep users, sessions, categories and statuses in PostgreSQL "
    "(in schema mmload_sim, recreated at start) [default: in memory].",
)
@click.option(
    "--db-max-open-conns",
    type=int,
    help="Database connection pool size, as SqlSettings.MaxOpenConns "
    f"[default: {default_of(SimSettings, 'db_max_open_conns')}].",
)
@click.option(
    "--admin-token-file",
    type=click.Path(dir_okay=False),
    help="A file holding the token of the simulated system admin (GET /api/v4/config, "
    "/api/v4/cluster/status); never printed.",
)
@click.option(
    "--accounts",
    type=click.Path(dir_okay=False),
    help="A credentials file (as `run --credentials`): the first users take its login ids, "
    "passwords and methods (ldap, mfa, openid); never printed.",
)
@click.option(
    "--openid-discovery",
    help="OpenIdSettings.DiscoveryEndpoint: the IdP's .well-known/openid-configuration URL.",
)
@click.option("--openid-client-id", help="OpenIdSettings.Id: this server's client at the IdP.")
@click.option(
    "--openid-secret-file",
    type=click.Path(dir_okay=False),
    help=f"The client secret in a file [default: ${OPENID_SECRET_ENV}]; never printed.",
)
def sim_command(
    host: str,
    port: int,
    metrics_port: int,
    no_metrics: bool,
    profile_name: str | None,
    profile_file: str | None,
    ws_auth_timeout: float | None,
    ws_ping_interval: float | None,
    database: str | None,
    db_max_open_conns: int | None,
    admin_token_file: str | None,
    accounts: str | None,
    openid_discovery: str | None,
    openid_client_id: str | None,
    openid_secret_file: str | None,
    **population: Any,
) -> None:
    """Run the Mattermost API v4 simulator until Ctrl-C / SIGTERM.

    Prints its URL when ready. Serves login, the web app's initial-load calls, posts, the
    WebSocket and Prometheus metrics for a deterministic population (see `mmload seed`).
    """
    from mmload.sim.server import serve_until_signal

    spec = population_from_flags(population)
    name, profile = load_profile(profile_name, profile_file)
    values = {
        "host": host,
        "port": port,
        "metrics_port": None if no_metrics else metrics_port,
        "ws_auth_timeout_s": ws_auth_timeout,
        "ws_ping_interval_s": ws_ping_interval,
        "database_url": database,
        "db_max_open_conns": db_max_open_conns,
    }
    settings = model_from_flags(SimSettings, values, SIM_FLAGS)
    update: dict[str, Any] = {"population": spec, "profile": profile, "profile_name": name}
    if no_metrics:  # model_from_flags drops None values: say it here
        update["metrics_port"] = None
    if admin_token_file is not None:
        update["admin_token"] = SecretStr(read_token_file(admin_token_file, "--admin-token-file"))
    if accounts is not None:
        from mmload.config.credentials import read_credentials

        update["accounts"] = read_credentials(Path(accounts))
        if len(update["accounts"]) > spec.users:
            raise UserError(
                f"{len(update['accounts'])} users, more than --users {spec.users}",
                source=accounts,
                field="--accounts",
            )
    update["openid"] = openid_settings(openid_discovery, openid_client_id, openid_secret_file)
    settings = settings.model_copy(update=update)

    def ready(running: Any) -> None:
        metrics = running.metrics_url or "disabled"
        click.echo(f"mmload sim ready: {running.url} (metrics {metrics})")
        p = settings.population
        click.echo(
            f"  profile {name}: {profile.description or 'custom'}; server version "
            f"{profile.server_version}"
        )
        click.echo(
            f"  population: {p.users} users (user-1 .. user-{p.users}, password "
            f"{p.password!r}), {p.teams} teams x {p.channels_per_team} channels, "
            f"seed {p.seed}"
        )
        if settings.database_url:
            from urllib.parse import urlsplit

            where = urlsplit(settings.database_url)  # no credentials in the output
            click.echo(
                f"  database: PostgreSQL {where.hostname}:{where.port or 5432}{where.path}, "
                f"schema mmload_sim, pool {settings.db_max_open_conns}"
            )
        if admin_token_file is not None:
            click.echo(f"  admin: the token in {admin_token_file} (GET /api/v4/config)")
        if settings.accounts:
            click.echo(f"  accounts: the first {len(settings.accounts)} users from {accounts}")
        if settings.openid is not None:
            click.echo(f"  openid: {settings.openid.discovery_endpoint}")
        click.echo("  stop with Ctrl-C or SIGTERM")

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_until_signal(settings, ready))
    click.echo("mmload sim stopped")


def openid_settings(
    discovery: str | None, client_id: str | None, secret_file: str | None
) -> OpenIdSettings | None:
    """The IdP of the OpenID sign-in, from its three flags (the secret from a file or
    ``$MMLOAD_SIM_OPENID_SECRET``, never from the command line); None without any."""
    secret_env = os.environ.get(OPENID_SECRET_ENV)
    if discovery is None and client_id is None and secret_file is None:
        return None
    if not (discovery and client_id):
        raise UserError(
            "give --openid-discovery and --openid-client-id together",
            source="command line",
            field="--openid-discovery" if not discovery else "--openid-client-id",
        )
    if secret_file is not None:
        secret = read_token_file(secret_file, "--openid-secret-file")
    elif secret_env:
        secret = secret_env.strip()
    else:
        raise UserError(
            f"the client secret: --openid-secret-file or ${OPENID_SECRET_ENV}",
            source="command line",
            field="--openid-secret-file",
        )
    values = {"discovery_endpoint": discovery, "client_id": client_id, "client_secret": secret}
    return validate_model(OpenIdSettings, values, "command line")


@click.command("seed")
@population_options
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    show_default=True,
    help="Bulk-import JSONL file to write ('-': stdout).",
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def seed_command(out: str, force: bool, **population: Any) -> None:
    """Write the deterministic population as Mattermost bulk-import JSONL.

    The same flags give the same population `mmload sim` serves. Load it into a real server
    with `mmctl import process` (raise TeamSettings.MaxUsersPerTeam first: it defaults to 50).
    """
    from mmload.sim.bulk import write_bulk_import
    from mmload.sim.population import Population

    spec = population_from_flags(population)
    pop = Population(spec)
    if out == "-":
        lines = write_bulk_import(pop, sys.stdout)
        sys.stdout.flush()
        return
    path = Path(out)
    if not path.parent.is_dir():
        raise UserError("directory does not exist", source=str(path), field="--out")
    if (path.exists() or path.is_symlink()) and not force:
        raise UserError("exists: pass --force to overwrite it", source=str(path), field="--out")
    with path.open("w", encoding="utf-8") as fh:
        lines = write_bulk_import(pop, fh)
    click.echo(
        f"wrote {path}: {lines} lines ({spec.users} users, {spec.teams} teams, "
        f"{spec.teams * spec.channels_per_team} channels)",
        err=True,
    )


def register(group: click.Group) -> None:
    """Add this stage's commands to group."""
    group.add_command(sim_command)
    group.add_command(seed_command)
