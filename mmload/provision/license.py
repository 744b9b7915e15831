"""The license gate: deployments that need Enterprise features need `mattermost.license_file`.

Without a license the server quietly does without them (its `enterprise/metrics`,
`enterprise/opensearch` and cluster code return early), so a run would measure unclustered
nodes, database search and an empty Grafana without saying so. mmload refuses instead, unless
`mattermost.unlicensed: true` asks for the single-node deployment such a server can use.
"""

from __future__ import annotations

from pathlib import Path

from mmload.config.deployment import Deployment
from mmload.errors import UserError
from mmload.provision.sizing import Sizing


def enterprise_features(sizing: Sizing) -> list[str]:
    """What of this deployment works only with an Enterprise license."""
    out = []
    if sizing.app.count > 1:
        out.append(f"{sizing.app.count} app nodes (clustering)")
    if sizing.search.count:
        out.append("OpenSearch")
    out.append("Mattermost's /metrics (server-side SLOs, Grafana)")
    return out


def license_problem(dep: Deployment, sizing: Sizing, *, flag: bool = False) -> str | None:
    """Why this deployment cannot go ahead with its license settings, or None (the one rule
    behind init, render, plan and up's preflight). ``flag``: name `mmload init`'s options."""
    mm = dep.mattermost
    if mm.unlicensed or dep.target:  # target: an existing server, no Mattermost built here
        return None
    if mm.license_file is None:
        other = "--unlicensed" if flag else "mattermost.unlicensed: true"
        return (
            f"tier {dep.tier:,} needs an Enterprise license for "
            f"{', '.join(enterprise_features(sizing))}: give the license file, or {other} for "
            "one app node without them"
        )
    if not Path(mm.license_file).expanduser().is_file():
        return f"file not found: {mm.license_file}"
    return None


def license_field(*, flag: bool = False) -> str:
    """The field (or flag) a license problem is about."""
    return "--license-file" if flag else "mattermost.license_file"


def check_license(dep: Deployment, sizing: Sizing, source: str, *, flag: bool = False) -> None:
    """Refuse (exit 2, one line) a deployment needing a license that names none, or names a
    missing file. ``flag``: name the `mmload init` options instead of the file's fields."""
    problem = license_problem(dep, sizing, flag=flag)
    if problem:
        raise UserError(problem, source=source, field=license_field(flag=flag))
