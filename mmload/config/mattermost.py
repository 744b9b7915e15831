"""Settings of the Mattermost server under test (the `mattermost:` section of deployment.yaml).

Owned by the configuration stage; the deployment model embeds it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class MattermostSettings(BaseModel):
    """Which Mattermost to install and how."""

    model_config = ConfigDict(extra="forbid")

    version: str = "10.11.12"
    download_url: str | None = None  # default: the official release tarball for `version`
    sha256: str | None = None  # checksum of the tarball; verified when given
    license_file: str | None = None  # path on the operator's machine
