"""What a deployment has in AWS, found through the tagging API: ``mmload status`` and the check
after ``mmload down`` that nothing tagged ``mmload:deployment=<name>`` is left."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mmload.lifecycle.aws import Aws

DEPLOYMENT_TAG = "mmload:deployment"
EXPIRES_TAG = "mmload:expires-at"
OWNER_TAG = "mmload:owner"
TIER_TAG = "mmload:tier"
GONE_STATES = {"terminated", "deleted", "deleting", "failed"}


@dataclass(frozen=True)
class Tagged:
    """One resource the tagging API lists, with its tags."""

    arn: str
    tags: dict[str, str]

    @property
    def service(self) -> str:
        return self.arn.split(":")[2]

    @property
    def kind(self) -> str:
        """``ec2:instance``, ``rds:cluster``, ``s3:bucket`` ..."""
        rest = self.arn.split(":", 5)[5]
        if self.service == "s3":
            return "s3:bucket"
        return f"{self.service}:{rest.split('/')[0].split(':')[0]}"

    @property
    def resource_id(self) -> str:
        rest = self.arn.split(":", 5)[5]
        if self.service == "s3":
            return rest
        if self.service == "rds":
            return rest.split(":", 1)[1]
        return rest.split("/", 1)[-1]

    @property
    def deployment(self) -> str:
        return self.tags.get(DEPLOYMENT_TAG, "")


def tagged_resources(aws: Aws, filters: list[dict[str, Any]]) -> list[Tagged]:
    """Every resource matching the tag filters (tag:GetResources, all pages)."""
    pages = aws.client("tag").get_paginator("get_resources").paginate(TagFilters=filters)
    return [
        Tagged(m["ResourceARN"], {t["Key"]: t["Value"] for t in m.get("Tags", [])})
        for page in pages
        for m in page["ResourceTagMappingList"]
    ]


def _states(aws: Aws, found: list[Tagged]) -> dict[str, str]:
    """arn -> state for the kinds the tagging API keeps listing after deletion."""
    out: dict[str, str] = {}
    ec2 = aws.client("ec2")
    ids = {r.resource_id: r.arn for r in found if r.kind == "ec2:instance"}
    if ids:
        pages = ec2.get_paginator("describe_instances").paginate(InstanceIds=sorted(ids))
        for page in pages:
            for res in page["Reservations"]:
                for inst in res["Instances"]:
                    out[ids[inst["InstanceId"]]] = inst["State"]["Name"]
    nats = {r.resource_id: r.arn for r in found if r.kind == "ec2:natgateway"}
    if nats:
        for nat in ec2.describe_nat_gateways(NatGatewayIds=sorted(nats))["NatGateways"]:
            out[nats[nat["NatGatewayId"]]] = nat["State"]
    return out


def live(aws: Aws, found: list[Tagged]) -> list[Tagged]:
    """Drop what is already gone: terminated instances, deleted NAT gateways, and RDS's
    automated snapshots (``rds:`` prefix: they go with their cluster)."""
    states = _states(aws, found)
    out = []
    for r in found:
        if states.get(r.arn) in GONE_STATES:
            continue
        if r.kind == "rds:cluster-snapshot" and r.resource_id.startswith("rds:"):
            continue
        out.append(r)
    return out


def deployment_resources(aws: Aws, name: str) -> list[Tagged]:
    """What still exists of deployment ``name``, by its ``mmload:deployment`` tag."""
    return live(aws, tagged_resources(aws, [{"Key": DEPLOYMENT_TAG, "Values": [name]}]))


def kinds(found: list[Tagged]) -> str:
    """``5 ec2:instance, 1 rds:cluster, ...`` (most first)."""
    counts = Counter(r.kind for r in found)
    return ", ".join(f"{n} {k}" for k, n in counts.most_common())


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def span(seconds: float) -> str:
    """``2 h 05 min`` / ``7 min``."""
    minutes = int(abs(seconds) // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def earliest_launch(aws: Aws, found: list[Tagged]) -> datetime | None:
    """When the deployment's first running instance started (None: no instance)."""
    ids = [r.resource_id for r in found if r.kind == "ec2:instance"]
    if not ids:
        return None
    times = [
        inst["LaunchTime"]
        for page in aws.client("ec2").get_paginator("describe_instances").paginate(InstanceIds=ids)
        for res in page["Reservations"]
        for inst in res["Instances"]
    ]
    return min(times).astimezone(UTC) if times else None


@dataclass
class Status:
    """``mmload status``: what exists, since when, what it costs, how long it may live."""

    name: str
    found: list[Tagged]
    since: datetime | None
    expires_at: datetime | None
    hourly: float
    now: datetime

    def lines(self) -> list[str]:
        if not self.found:
            return [f"{self.name}: nothing tagged mmload:deployment={self.name} exists"]
        out = [f"{self.name}: {len(self.found)} tagged resources ({kinds(self.found)})"]
        if self.since:
            hours = (self.now - self.since).total_seconds() / 3600
            stamp = self.since.strftime("%Y-%m-%dT%H:%M:%SZ")
            out.append(f"since {stamp} ({span(hours * 3600)} ago)")
            out.append(
                f"cost ${self.hourly:,.2f}/h, about ${self.hourly * hours:,.2f} accrued "
                "(on-demand compute only)"
            )
        else:
            out.append(f"cost ${self.hourly:,.2f}/h while its nodes run (no instance runs now)")
        if self.expires_at:
            left = (self.expires_at - self.now).total_seconds()
            stamp = self.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            when = f"{span(left)} left" if left > 0 else f"expired {span(left)} ago"
            out.append(f"ttl: expires at {stamp}, {when} (`mmload sweep` removes it after)")
        return out


def deployment_status(aws: Aws, name: str, hourly: float, now: datetime | None = None) -> Status:
    """The deployment's status from its tags (and its instances' launch times)."""
    found = deployment_resources(aws, name)
    expires = [parse_time(r.tags.get(EXPIRES_TAG)) for r in found]
    known = [e for e in expires if e]
    return Status(
        name=name,
        found=found,
        since=earliest_launch(aws, found),
        expires_at=min(known) if known else None,
        hourly=hourly if found else 0.0,
        now=now or datetime.now(UTC),
    )
