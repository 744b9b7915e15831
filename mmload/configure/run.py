"""`mmload configure`: deployment.yaml + outputs.json → inventory → ansible-runner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mmload.config.components import registry
from mmload.configure.driver import PlaybookResult, run_playbook
from mmload.configure.inventory import (
    DeploymentOutputs,
    build_inventory,
    load_outputs,
    resolve_key,
)
from mmload.configure.plan import (
    MattermostInputs,
    agents_extravars,
    check_tags,
    has_hosts,
    installs_mmload,
    selected_roles,
    users_for,
)
from mmload.configure.progress import Reporter
from mmload.configure.secrets import (
    GRAFANA_PASSWORD_FILE,
    ensure_grafana_password,
    read_db_password,
)
from mmload.configure.tls import ProxyTls, generated_tls, own_tls, target_ca
from mmload.configure.wheel import build_wheel
from mmload.errors import RunFailed, UserError

if TYPE_CHECKING:
    from mmload.config.deployment import Deployment


def configure(
    config: Path,
    *,
    outputs_path: Path | None,
    tags: list[str],
    skip_tags: list[str],
    reporter: Reporter,
    limit: str | None = None,
    seed_file: Path | None = None,
    check: bool = False,
    notice: Callable[[str], None] | None = None,
) -> PlaybookResult:
    """Configure a provisioned deployment; raise RunFailed naming host, task and message.
    ``notice`` shows the operator what they see once (a newly generated Grafana password)."""
    from mmload.config.deployment import load_deployment

    check_tags(tags, skip_tags)
    dep = load_deployment(config)
    work = dep.workdir
    out_path = outputs_path or work / "outputs.json"
    outputs = load_outputs(out_path, deployment=dep.name)
    roles = selected_roles(tags, skip_tags)
    if "seed" in roles and not seed_file:
        raise UserError(
            "--tags seed needs --seed FILE (the JSONL from `mmload seed`)",
            source="command line",
            field="--seed",
        )
    users = users_for(dep)
    mm = MattermostInputs(dep.mattermost, users=users, source=str(config), seed_file=seed_file)
    installs_app = "mattermost" in roles and has_hosts(outputs, "app")
    extravars = mm.extravars(need_checksum=installs_app)
    secrets: dict[str, str] = {}
    if installs_app and outputs.database is not None:
        secrets["mattermost_db_password"] = read_db_password(
            outputs.database.master_secret_arn,
            region=outputs.region,
            profile=dep.aws.profile,
            endpoint_url=dep.aws.endpoint_url,
            source=str(out_path),
        )
    if installs_mmload(roles):
        extravars |= agents_extravars(build_wheel(work / "configure" / "wheels"))
    if roles & {"proxy", *registry().mmload_tags} and has_hosts(outputs, "proxy"):
        tls = proxy_tls(dep, outputs, work, str(config))
        extravars["proxy_tls_cert"] = tls.cert_pem
        extravars["mmload_ca_cert"] = tls.ca_pem
        if "proxy" in roles:
            secrets["proxy_tls_key"] = tls.key_pem
    if roles & registry().mmload_tags and dep.target and dep.target.ca_file:
        extravars["mmload_ca_cert"] = target_ca(dep.target.ca_file, str(config))
    if "metrics" in roles and has_hosts(outputs, "metrics"):
        password, created = ensure_grafana_password(work)
        secrets["metrics_grafana_admin_password"] = password
        if created and notice:
            notice(
                f"Grafana: {outputs.site_url.rstrip('/')}/grafana/ user admin, password "
                f"{password} (shown once; kept in {work / GRAFANA_PASSWORD_FILE}, mode 0600)"
            )
    inventory = build_inventory(outputs, users=users, key=resolve_key(outputs, out_path))
    result = run_playbook(
        inventory=inventory,
        work_dir=work / "configure" / "runner",
        reporter=reporter,
        extravars=extravars,
        secrets=secrets,
        tags=tags,
        skip_tags=skip_tags,
        limit=limit,
        check=check,
    )
    raise_on_failure(result)
    return result


def proxy_tls(dep: Deployment, outputs: DeploymentOutputs, work: Path, source: str) -> ProxyTls:
    """The operator's own certificate (tls: in deployment.yaml), else mmload's for every
    address the proxy is reached at (site URL, public and private IPs)."""
    if dep.tls.cert_file and dep.tls.key_file:
        return own_tls(dep.tls.cert_file, dep.tls.key_file, dep.tls.ca_file, source=source)
    names = [urlsplit(outputs.site_url).hostname or ""]
    if outputs.proxy_address:
        names.append(outputs.proxy_address)
    for host in outputs.hosts.get("proxy", []):
        names += [ip for ip in (host.public_ip, host.private_ip) if ip]
    return generated_tls(work, dep.name, [n for n in names if n])


def raise_on_failure(result: PlaybookResult) -> None:
    """RunFailed with the first failure (host, task, message) and where the full log is."""
    if result.ok:
        return
    where = f" (full log: {result.artifacts}/stdout)" if result.artifacts else ""
    if result.failures:
        first = result.failures[0]
        more = len(result.failures) - 1
        extra = f"; and {more} more failure(s)" if more else ""
        raise RunFailed(f"configure failed: {first.one_line()}{extra}{where}")
    why = result.last_output_line()
    raise RunFailed(
        f"configure failed: ansible-playbook ended {result.status} (rc {result.rc})"
        + (f": {why}" if why else "")
        + where
    )
