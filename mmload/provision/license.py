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


def check_license(dep: Deployment, sizing: Sizing, source: str, *, flag: bool = False) -> None:
    """Refuse (exit 2, one line) a deployment needing a license that names none, or names a
    missing file. ``flag``: name the `mmload init` options instead of the file's fields."""
    mm = dep.mattermost
    if mm.unlicensed:
        return
    field = "--license-file" if flag else "mattermost.license_file"
    if mm.license_file is None:
        other = "--unlicensed" if flag else "mattermost.unlicensed: true"
        raise UserError(
            f"tier {dep.tier:,} needs an Enterprise license for "
            f"{', '.join(enterprise_features(sizing))}: give the license file, or {other} for "
            "one app node without them",
            source=source,
            field=field,
        )
    if not Path(mm.license_file).expanduser().is_file():
        raise UserError(f"file not found: {mm.license_file}", source=source, field=field)
