"""boto3 clients for one deployment's account and region (and its emulator, when set)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mmload.config.deployment import Deployment

ClientFactory = Callable[[str], Any]


@dataclass
class Aws:
    """Where the lifecycle's AWS calls go: region, profile, endpoint; clients made once each."""

    region: str
    profile: str | None = None
    endpoint_url: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # service -> client (tests' stubs)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def for_deployment(cls, dep: Deployment, **kw: Any) -> Aws:
        """The deployment's region, named profile and emulator endpoint."""
        return cls(dep.region, dep.aws.profile, dep.aws.endpoint_url, **kw)

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` (``tag`` is the Resource Groups Tagging API)."""
        if service in self.overrides:
            return self.overrides[service]
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
            name = {"tag": "resourcegroupstaggingapi"}.get(service, service)
            config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10)
            self._clients[service] = session.client(
                name, endpoint_url=self.endpoint_url, config=config
            )
        return self._clients[service]


def aws_error(exc: BaseException) -> str:
    """A botocore/boto3 exception as one short line (code and message)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response["Error"]
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    return " ".join(str(exc).split()) or type(exc).__name__
