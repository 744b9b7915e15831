"""Settings of the Mattermost server under test (the `mattermost:` section of deployment.yaml).

Owned by the configuration stage; the deployment model embeds it.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from mmload.config.base import StrictModel

RELEASES = "https://releases.mattermost.com"


class MattermostSettings(StrictModel):
    """Which Mattermost to install and how."""

    version: str = Field(default="10.11.12", pattern=r"^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$")
    download_url: str | None = None  # default: the official release tarball for `version`
    # sha256 of the tarball (64 hex digits); the install refuses an unverified tarball.
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    license_file: str | None = None  # path on the operator's machine
    # A tarball on the operator's machine instead of a download (offline networks).
    tarball_file: str | None = None
    # TeamSettings.MaxUsersPerTeam. Mattermost's default (50) blocks importing a load-test
    # population into one team; None = twice the deployment's users.
    max_users_per_team: int | None = Field(default=None, ge=50)
    # No Enterprise license, on purpose: one app node, no OpenSearch, no Redis; Mattermost's own
    # metrics stay empty (the server serves /metrics only with a license). Runs say so.
    unlicensed: bool = False

    @model_validator(mode="after")
    def _license_or_not(self) -> MattermostSettings:
        if self.unlicensed and self.license_file:
            raise ValueError("unlicensed: true and a license_file contradict each other; keep one")
        return self

    @property
    def tarball_url(self) -> str:
        """Where to download the server: the given URL or the official release."""
        return self.download_url or (
            f"{RELEASES}/{self.version}/mattermost-{self.version}-linux-amd64.tar.gz"
        )

    def team_size_for(self, users: int) -> int:
        """MaxUsersPerTeam for a population of ``users``."""
        return self.max_users_per_team or max(50, 2 * users)
