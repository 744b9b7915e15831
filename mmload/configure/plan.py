"""From deployment.yaml + outputs.json to what the playbook run needs (pure, no side effects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmload import __version__
from mmload.config.components import SEED_TAG, registry
from mmload.config.mattermost import MattermostSettings
from mmload.configure.inventory import DeploymentOutputs
from mmload.errors import UserError


def role_tags() -> tuple[str, ...]:
    """The tags --tags accepts (the component registry): common, each role, seed."""
    return registry().role_tags


def selected_roles(tags: list[str], skip_tags: list[str]) -> set[str]:
    """Which roles a run with these --tags / --skip-tags touches (seed only when asked)."""
    chosen = set(tags) if tags and "all" not in tags else set(role_tags()) - {SEED_TAG}
    if SEED_TAG in chosen:
        chosen.add("mattermost")  # the seed tasks are part of the mattermost role
    return chosen - set(skip_tags)


def installs_mmload(roles: set[str]) -> bool:
    """Whether these roles install mmload itself (the agents' and coordinator's)."""
    return bool(roles & registry().mmload_tags)


def check_tags(tags: list[str], skip_tags: list[str]) -> None:
    """Unknown tags are a user error (ansible would silently run nothing)."""
    known = (*role_tags(), "all")
    for flag, values in (("--tags", tags), ("--skip-tags", skip_tags)):
        for tag in values:
            if tag not in known:
                raise UserError(
                    f"unknown tag {tag!r}; known: {', '.join(known)}",
                    source="command line",
                    field=flag,
                )


@dataclass
class MattermostInputs:
    """The mattermost role's variables from the `mattermost:` section."""

    settings: MattermostSettings
    users: int
    source: str
    seed_file: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def extravars(self, *, need_checksum: bool) -> dict[str, Any]:
        """Role variables; the checksum is required when the server is installed."""
        mm = self.settings
        if need_checksum and not mm.sha256:
            raise UserError(
                f"required: the sha256 of mattermost-{mm.version}-linux-amd64.tar.gz "
                "(the install verifies the tarball)",
                source=self.source,
                field="mattermost.sha256",
            )
        out: dict[str, Any] = {
            "mattermost_version": mm.version,
            "mattermost_download_url": mm.tarball_url,
            "mattermost_sha256": (mm.sha256 or "").lower(),
            "mattermost_max_users_per_team": mm.team_size_for(self.users),
        }
        for key, value, name in (
            ("mattermost_license_file", mm.license_file, "mattermost.license_file"),
            ("mattermost_tarball_file", mm.tarball_file, "mattermost.tarball_file"),
        ):
            if value:
                path = Path(value).expanduser()
                if not path.is_file():
                    raise UserError(f"file not found: {value}", source=self.source, field=name)
                out[key] = str(path.resolve())
        if self.seed_file:
            out["mattermost_seed_file"] = str(self.seed_file.resolve())
        return out


def agents_extravars(wheel: Path | None) -> dict[str, Any]:
    """The agents/coordinator roles install the operator's exact mmload version."""
    out: dict[str, Any] = {"agents_mmload_version": __version__}
    if wheel:
        out["agents_mmload_wheel"] = str(wheel.resolve())
    return out


def users_for(deployment: Any) -> int:
    """The population the deployment is sized for: load.target_users, else the tier."""
    load = getattr(deployment, "load", None)
    return int(getattr(load, "target_users", None) or deployment.tier)


def has_hosts(outputs: DeploymentOutputs, group: str) -> bool:
    return bool(outputs.hosts.get(group))
