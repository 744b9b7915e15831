"""CLI commands of the provisioning stage: `architectures`, `init`, and `infra ...`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from mmload.commands.campaign import result_options, write_architecture_docs
from mmload.commands.common import (
    CONFIG_OPTION,
    choices_of,
    console,
    default_of,
    err_console,
    interactive,
    model_from_flags,
)
from mmload.config.catalog import load_catalog, load_prices
from mmload.config.deployment import (
    DEPLOYMENT_FILE,
    DatabaseSettings,
    Deployment,
    load_deployment,
)
from mmload.errors import RunFailed, UserError
from mmload.provision.deploy import Prepared, TerraformProgress, prepare
from mmload.provision.init_file import PLACEHOLDER_CIDR, deployment_yaml
from mmload.provision.license import check_license
from mmload.provision.sizing import cost_lines, hourly_total, resolve, unpriced
from mmload.provision.terraform import OUTPUTS_FILE, PLAN_FILE, TerraformDriver


def register(group: click.Group) -> None:
    """Add this stage's commands to group."""
    group.add_command(architectures)
    group.add_command(init)
    group.add_command(infra)


# -- architectures ---------------------------------------------------------------------------


@click.command()
@click.option(
    "--engine",
    type=click.Choice(choices_of(DatabaseSettings, "engine")),
    default=default_of(DatabaseSettings, "engine"),
    show_default=True,
    help="Database engine the cost estimate assumes.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
@click.option(
    "--docs",
    "docs",
    metavar="OUT",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write one Markdown page per architecture and an index into OUT (docs/campaign.md).",
)
@result_options
def architectures(
    engine: str,
    as_json: bool,
    docs: Path | None,
    results: tuple[Path, ...],
    data: tuple[Path, ...],
) -> None:
    """List Mattermost's reference architectures with load-test additions and $/hour.

    With --docs OUT: their documentation pages, with the supported users validated by the
    ceiling results of --results (run records) and --data (Mattermost's published data).
    """
    if docs is not None:
        if as_json:
            raise UserError(
                "lists the catalog, --docs writes pages: give one",
                source="command line",
                field="--json",
            )
        write_architecture_docs(docs, results, data)
        return
    if results or data:
        raise UserError("needs --docs OUT", source="command line", field="--results/--data")
    cat, prices = load_catalog(), load_prices()
    rows = []
    for tier in cat.tiers:
        dep = Deployment.model_validate(
            {
                "name": "catalog",
                "tier": tier.users,
                "operator_cidrs": [PLACEHOLDER_CIDR],
                "database": {"engine": engine},
            }
        )
        sizing = resolve(dep)
        lines = cost_lines(sizing, engine, prices)
        rows.append((tier, sizing, hourly_total(lines), unpriced(lines)))
    if as_json:
        out = [
            {
                **tier.model_dump(),
                "agents": {"count": s.agents.count, "instance_type": s.agents.instance_type},
                "coordinator": s.coordinator.model_dump(),
                "metrics": s.metrics.model_dump(),
                "usd_per_hour": round(total, 2),
            }
            for tier, s, total, _ in rows
        ]
        click.echo(json.dumps(out, indent=2))
        return
    table = Table(title="Mattermost reference architectures (+ load test)", title_justify="left")
    for col in ("users", "app", "database (writer+readers)", "search", "proxy", "redis"):
        table.add_column(col, justify="right" if col == "users" else "left")
    table.add_column("agents / coord / metrics")
    table.add_column("$/hour", justify="right")
    for tier, s, total, missing in rows:
        db = s.database
        table.add_row(
            f"{tier.users:,}",
            f"{s.app.count} x {s.app.instance_type}",
            f"1+{db.readers} x {db.instance_class}",
            f"{s.search.count} x {s.search.instance_type}" if s.search.count else "-",
            f"{s.proxy.count} x {s.proxy.instance_type}",
            f"{s.cache.count} x {s.cache.node_type}" if s.cache.count else "-",
            f"{s.agents.count} x {s.agents.instance_type} / 1 / 1",
            f"{total:,.2f}" + ("*" if missing else ""),
        )
    out = console if interactive() else Console(highlight=False, width=160)
    out.print(table)
    lt = cat.load_test
    out.print(
        f"Sizes: Mattermost's published reference architectures (read {cat.read_on}; "
        f"`mmload architectures --json` lists each source URL).\n"
        f"Agents: ceil(users / {lt.users_per_agent:,}) x {lt.agent_instance_type} "
        f"({lt.users_per_agent_source.strip()})\n"
        f"$/hour: on-demand {prices.region}, {engine}, price table of {prices.as_of}; "
        "compute only (no storage, transfer or tax).",
        highlight=False,
    )


# -- init --------------------------------------------------------------------------------------


@click.command()
@click.option("--tier", type=int, required=True, help="Concurrent users of a published tier.")
@click.option("--name", default=None, help="Deployment name (prefix of every resource).")
@click.option("--region", default=default_of(Deployment, "region"), show_default=True)
@click.option(
    "--operator-cidr",
    "operator_cidrs",
    multiple=True,
    help="CIDR allowed to reach SSH and Grafana (repeatable), e.g. your IP /32.",
)
@click.option(
    "-o",
    "--output",
    default=DEPLOYMENT_FILE,
    show_default=True,
    type=click.Path(dir_okay=False),
)
@click.option(
    "--license-file",
    type=click.Path(dir_okay=False),
    help="The Enterprise license (clustering, OpenSearch and /metrics need one).",
)
@click.option(
    "--unlicensed", is_flag=True, help="No license: one app node, no OpenSearch, no Redis."
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(
    tier: int,
    name: str | None,
    region: str,
    operator_cidrs: tuple[str, ...],
    output: str,
    license_file: str | None,
    unlicensed: bool,
    force: bool,
) -> None:
    """Write a commented deployment.yaml for a published tier."""
    if name is None:
        name = f"mm-{tier // 1000}k" if tier >= 1000 else f"mm-{tier}"
    flags = {
        "tier": tier,
        "name": name,
        "region": region,
        "operator_cidrs": list(operator_cidrs) or [PLACEHOLDER_CIDR],
    }
    model_from_flags(Deployment, flags, {"operator_cidrs": "--operator-cidr"})
    out = Path(output)
    if out.exists() and not force:
        raise UserError("file exists (use --force to overwrite)", source=str(out))
    text = deployment_yaml(
        tier=tier,
        name=name,
        region=region,
        cidrs=list(operator_cidrs),
        license_file=license_file,
        unlicensed=unlicensed,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        dep = load_deployment(tmp)  # the file must load back; a bad flag is reported here
        check_license(dep, resolve(dep), "command line", flag=True)
    except UserError as exc:
        tmp.unlink()
        field = {"mattermost.license_file": "--license-file"}.get(exc.field or "", exc.field)
        raise UserError(exc.message, source="command line", field=field) from None
    tmp.replace(out)
    console.print(f"wrote {out} (tier {tier:,}); next: mmload infra plan -c {out}")
    if not operator_cidrs:
        err_console.print(
            f"note: operator_cidrs is a documentation placeholder ({PLACEHOLDER_CIDR}): "
            "put your own IP there before `mmload infra plan`."
        )


# -- infra -------------------------------------------------------------------------------------


@click.group()
def infra() -> None:
    """Provision the deployment in AWS with Terraform: render, plan, apply, output, destroy."""


def _progress(label: str, total: int | None = None) -> TerraformProgress:
    return TerraformProgress(console, label, total, live=interactive())


def _cost_report(prepared: Prepared) -> None:
    lines = prepared.costs
    prices = load_prices()
    table = Table(title="Estimated cost (on-demand, compute only)", title_justify="left")
    for col in ("component", "count", "type", "$/hour"):
        table.add_column(col, justify="right" if col in ("count", "$/hour") else "left")
    for line in lines:
        price = f"{line.hourly:,.2f}" if line.unit_price is not None else "not in price table"
        table.add_row(line.component, str(line.count), line.instance_type, price)
    table.add_row("total", "", "", f"{hourly_total(lines):,.2f}")
    console.print(table)
    console.print(
        f"prices: {prices.region} on-demand as of {prices.as_of}; expires-at tag "
        f"{prepared.rendered.expires_at} (ttl {prepared.dep.ttl_hours} h)",
        highlight=False,
    )


@infra.command("render")
@CONFIG_OPTION
def render_cmd(config: str) -> None:
    """Render the Terraform for deployment.yaml into its working directory."""
    prepared = prepare(config)
    console.print(
        f"rendered {len(prepared.rendered.files)} files into {prepared.rendered.workdir}",
        highlight=False,
    )


@infra.command("validate")
@CONFIG_OPTION
def validate_cmd(config: str) -> None:
    """Render, terraform init and terraform validate."""
    progress = _progress("validate")
    prepared = prepare(config, progress)
    with progress.running():
        prepared.driver.init()
        prepared.driver.validate()
    console.print("configuration is valid", highlight=False)


@infra.command("plan")
@CONFIG_OPTION
def plan_cmd(config: str) -> None:
    """Render, init and save a plan (plan validates too); print its summary and the cost."""
    progress = _progress("plan")
    prepared = prepare(config, progress)
    with progress.running():
        prepared.driver.init()
        summary = prepared.driver.plan()
    console.print(summary.line(), highlight=False)
    _cost_report(prepared)
    console.print(f"saved plan: {prepared.rendered.workdir / PLAN_FILE}", highlight=False)
    _check(prepared.dep, prepared.driver)
    console.print(f"next: mmload infra apply -c {config}", highlight=False)


def _check(dep: Deployment, driver: TerraformDriver) -> None:
    """Print one line per needed network flow; any FAIL is a failed run (exit 1)."""
    from mmload.provision.check import check_plan
    from mmload.provision.render import TEMPLATE_DIR

    verdicts = check_plan(driver.saved_plan_json(), dep.operator_cidrs, TEMPLATE_DIR)
    for v in verdicts:
        console.print(v.line(), highlight=False, markup=False, soft_wrap=True)
    failed = [v for v in verdicts if not v.ok]
    if failed:
        raise RunFailed(
            f"infra check: {len(failed)} of {len(verdicts)} network checks fail (lines above); "
            "fix the rules in terraform/<component>.rules.yaml and plan again"
        )
    console.print(f"infra check: all {len(verdicts)} network checks pass", highlight=False)


@infra.command("check")
@CONFIG_OPTION
def check_cmd(config: str) -> None:
    """Prove from the saved plan that every needed network flow is allowed (AWS SG semantics)."""
    dep = load_deployment(config)
    driver = TerraformDriver(
        dep.workdir, binary=dep.terraform.binary, plugin_dir=dep.terraform.plugin_dir
    )
    _check(dep, driver)


@infra.command("apply")
@CONFIG_OPTION
def apply_cmd(config: str) -> None:
    """Apply the saved plan (from `mmload infra plan`) and write outputs.json."""
    dep = load_deployment(config)
    workdir = dep.workdir
    if not (workdir / PLAN_FILE).exists():
        raise UserError(
            f"no saved plan in {workdir}: run `mmload infra plan -c {config}` first",
            source=config,
        )
    progress = _progress("apply")
    driver = TerraformDriver(
        workdir, binary=dep.terraform.binary, plugin_dir=dep.terraform.plugin_dir, sink=progress
    )
    saved = driver.saved_summary()
    progress.total = (saved.add + saved.change + saved.destroy) if saved else None
    with progress.running():
        try:
            outputs = driver.apply()
        except RunFailed as exc:
            raise RunFailed(
                f"{exc}\nPartially created resources remain: fix the cause and run "
                f"`mmload infra plan` + `apply` again, or `mmload infra destroy -c {config}`."
            ) from None
    _print_outputs(outputs, workdir)
    console.print(
        f"expires-at tag: {_expiry(workdir)}; remove everything with "
        f"`mmload infra destroy -c {config}`",
        highlight=False,
    )


def _expiry(workdir: Path) -> str:
    meta = workdir / "mmload-meta.json"
    return json.loads(meta.read_text())["expires_at"] if meta.exists() else "unknown"


def _print_outputs(outputs: dict, workdir: Path) -> None:
    hosts = outputs.get("hosts", {})
    counts = ", ".join(f"{len(v)} {k}" for k, v in hosts.items())
    console.print(
        f"site: {outputs.get('site_url')}  hosts: {counts}\noutputs: {workdir / OUTPUTS_FILE}",
        highlight=False,
    )


@infra.command("output")
@CONFIG_OPTION
def output_cmd(config: str) -> None:
    """Print the deployment's outputs as JSON (and refresh outputs.json)."""
    dep = load_deployment(config)
    driver = TerraformDriver(dep.workdir, binary=dep.terraform.binary)
    click.echo(json.dumps(driver.outputs(), indent=2, sort_keys=True))


@infra.command("destroy")
@CONFIG_OPTION
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def destroy_cmd(config: str, yes: bool) -> None:
    """Destroy everything the deployment created; check that the state is empty."""
    dep = load_deployment(config)
    if not yes:
        if not interactive():
            raise UserError("destroy needs --yes when not run from a terminal", field="--yes")
        click.confirm(f"Destroy every resource of deployment {dep.name!r}?", abort=True)
    progress = _progress("destroy")
    prepared = prepare(config, progress, license_gate=False)
    with progress.running():
        prepared.driver.init()
        prepared.driver.destroy()
    left = prepared.driver.state_resources()
    if left:
        raise RunFailed(f"destroy left {len(left)} resources in the state: {', '.join(left)}")
    console.print(f"destroyed: nothing of {dep.name!r} is left in the state", highlight=False)
