"""The deployment.yaml model: what to build in AWS, where, for whom, and for how long.

Fixed key names scripts rely on: ``name``, ``region``, ``tier``, ``operator_cidrs``,
``aws.endpoint_url``, ``terraform.plugin_dir``. Every default lives here.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mmload.config.base import StrictModel
from mmload.config.bounds import MAX_USERS, Count
from mmload.config.catalog import load_catalog
from mmload.config.loader import load_model
from mmload.config.mattermost import MattermostSettings

NAME_RE = r"^[a-z][a-z0-9-]{2,24}$"
REGION_RE = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"
INSTANCE_RE = r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"
# A server's base URL: http(s)://host[:port], no path, query or credentials.
URL_RE = r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?/?$"
METRICS_URL_RE = r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9._/-]*)?$"  # a path allowed
DEPLOYMENT_FILE = "deployment.yaml"  # what `-c/--config` reads and `mmload init` writes
# Operator CIDRs may together open at most this much public address space (a /16) unless
# allow_wide_operator_cidrs says so.
MAX_PUBLIC_OPERATOR_ADDRESSES = 2**16
# IPv4 space that is not public (RFC 6890 special-purpose blocks: private, shared, loopback,
# link-local, documentation, benchmarking, multicast, reserved).
NON_PUBLIC_V4 = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/3",
    )
)


class AwsSettings(StrictModel):
    """How to reach AWS: a named profile (else the default chain) and an optional endpoint."""

    profile: str | None = None
    # An AWS-compatible emulator (moto, LocalStack), e.g. http://127.0.0.1:5000. None = real AWS.
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")


class TerraformSettings(StrictModel):
    """The Terraform binary, provider mirror and state backend."""

    binary: str = "terraform"
    # Offline provider mirror (terraform init -plugin-dir). Env MMLOAD_TF_PLUGIN_DIR also works.
    plugin_dir: str | None = None
    backend: Literal["local", "s3"] = "local"
    state_bucket: str | None = None  # backend s3: the bucket holding the state
    state_key: str | None = None  # backend s3: default "mmload/<name>/terraform.tfstate"
    lock_table: str | None = None  # backend s3: DynamoDB table for state locking

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> TerraformSettings:
        if self.backend == "s3" and not (self.state_bucket and self.lock_table):
            raise ValueError("backend s3 needs state_bucket and lock_table")
        return self


class NetworkSettings(StrictModel):
    """A new VPC (default) or an existing VPC and subnets."""

    vpc_cidr: str = "10.40.0.0/16"
    existing_vpc_id: str | None = Field(default=None, pattern=r"^vpc-[0-9a-f]+$")
    existing_public_subnet_ids: list[str] = Field(default_factory=list)
    existing_private_subnet_ids: list[str] = Field(default_factory=list)

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        net = ipaddress.ip_network(v, strict=True)
        if net.version != 4 or not 16 <= net.prefixlen <= 20:
            raise ValueError("vpc_cidr must be an IPv4 network between /16 and /20")
        return v

    @model_validator(mode="after")
    def _existing_complete(self) -> NetworkSettings:
        given = [self.existing_public_subnet_ids, self.existing_private_subnet_ids]
        if self.existing_vpc_id and not all(len(s) >= 2 for s in given):
            raise ValueError(
                "existing_vpc_id needs >= 2 existing_public_subnet_ids and >= 2 "
                "existing_private_subnet_ids (two AZs)"
            )
        if not self.existing_vpc_id and any(given):
            raise ValueError("existing subnets given without existing_vpc_id")
        return self


class DatabaseSettings(StrictModel):
    """Aurora PostgreSQL (default) or RDS for PostgreSQL. The password is RDS-managed."""

    engine: Literal["aurora-postgresql", "postgres"] = "aurora-postgresql"
    engine_version: str = "16.6"
    name: str = Field(default="mattermost", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    username: str = Field(default="mmuser", pattern=r"^[a-z][a-z0-9_]{0,15}$")
    allocated_storage_gb: Count(20, 65536) = 100  # engine postgres only


class Overrides(StrictModel):
    """Explicit sizes that replace the tier's published ones."""

    app_nodes: Count(1, 50) | None = None
    app_instance_type: str | None = Field(default=None, pattern=INSTANCE_RE)
    proxy_nodes: Count(1, 10) | None = None
    proxy_instance_type: str | None = Field(default=None, pattern=INSTANCE_RE)
    db_readers: Count(0, 15) | None = None
    db_instance_class: str | None = Field(default=None, pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    search_nodes: Count(0, 20) | None = None
    search_instance_type: str | None = Field(default=None, pattern=r"^[a-z0-9.]+\.search$")
    cache_nodes: Count(0, 6) | None = None
    cache_node_type: str | None = Field(default=None, pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")


class LoadSettings(StrictModel):
    """What the load test adds: agents sized from the target users, a coordinator, metrics."""

    target_users: Count(1, MAX_USERS) | None = None  # default: the tier's users
    users_per_agent: Count(1, MAX_USERS) | None = None  # default: the catalog's figure
    agent_instance_type: str | None = Field(default=None, pattern=INSTANCE_RE)
    coordinator_instance_type: str | None = Field(default=None, pattern=INSTANCE_RE)
    metrics_instance_type: str | None = Field(default=None, pattern=INSTANCE_RE)
    # Private IPv4 addresses per agent, its primary one included: with more than one, each agent
    # gets its own network interface with that many and an Elastic IP, and its users send from
    # all of them (a server's per-address login limiter sees several sources). At most what the
    # instance type allows per interface (c7i.xlarge: 15).
    agent_private_ips: Count(1, 50) = 1


class SshSettings(StrictModel):
    """The SSH key: generated into the working directory (default) or an existing public key."""

    public_key_file: str | None = None
    user: str = "ubuntu"


class TlsSettings(StrictModel):
    """The proxy's certificate: generated by mmload with its own CA (default), or your own."""

    cert_file: str | None = None  # PEM: the certificate (and its chain)
    key_file: str | None = None  # PEM: its unencrypted private key
    ca_file: str | None = None  # the CA the load agents verify it with (default: system trust)

    @model_validator(mode="after")
    def _pair(self) -> TlsSettings:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("give both cert_file and key_file, or neither (mmload makes one)")
        if self.ca_file and not self.cert_file:
            raise ValueError("ca_file goes with your own cert_file and key_file")
        return self


class Components(StrictModel):
    """Switch optional parts off, e.g. for an AWS emulator that lacks them (all on by default)."""

    search: bool = True  # the OpenSearch domain, when the tier has one
    cache: bool = True  # ElastiCache Redis, when the tier has one
    detailed_monitoring: bool = True  # EC2 1-minute CloudWatch metrics (moto lacks the API)


class TargetSettings(StrictModel):
    """An existing Mattermost server (the customer's) as the load target: only the agents, the
    coordinator and the metrics node are built, and load goes to ``url``."""

    url: str = Field(pattern=URL_RE)  # the server's base URL as the agents reach it
    # The customer's Prometheus: the metrics node federates its series (/federate).
    prometheus_url: str | None = Field(default=None, pattern=URL_RE)
    # Mattermost's own metrics endpoint (e.g. http://10.1.2.3:8067/metrics), scraped directly.
    metrics_url: str | None = Field(default=None, pattern=METRICS_URL_RE)
    # Where those addresses are: egress to the target's ports goes only there (default anywhere;
    # it opens nothing inbound).
    cidrs: list[str] = Field(default_factory=list)
    ca_file: str | None = None  # the CA the agents verify the target's TLS with (else system)

    @field_validator("url", "prometheus_url", "metrics_url")
    @classmethod
    def _port(cls, v: str | None) -> str | None:
        if v is not None and not 0 < url_port(v) <= 65535:
            raise ValueError(f"{v}: the port must be 1-65535")
        return v

    @field_validator("cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        out = []
        for cidr in v:
            try:
                net = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR (e.g. 198.51.100.0/24)") from None
            if net.version != 4:
                raise ValueError(f"{cidr}: only IPv4 target CIDRs are supported")
            out.append(str(net))
        return out

    def ports(self, *, metrics: bool = False) -> list[int]:
        """The TCP ports of the target (``metrics``: of its Prometheus and metrics endpoint)."""
        urls = [self.prometheus_url, self.metrics_url] if metrics else [self.url]
        return sorted({url_port(u) for u in urls if u})


def url_port(url: str) -> int:
    """The TCP port of an http(s) URL (80/443 when it names none)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # out of range
        return 0
    return port or (443 if parts.scheme == "https" else 80)


class Deployment(StrictModel):
    """One deployment.yaml."""

    name: str = Field(pattern=NAME_RE)
    region: str = Field(default="us-east-1", pattern=REGION_RE)
    availability_zones: list[str] = Field(default_factory=list)
    tier: Count(1, MAX_USERS)
    # Declared before operator_cidrs, whose check reads it.
    allow_wide_operator_cidrs: bool = False
    operator_cidrs: list[str] = Field(min_length=1)
    owner: str | None = Field(default=None, pattern=r"^[A-Za-z0-9@._+-]{1,64}$")
    ttl_hours: Count(1, 168) = 8
    tags: dict[str, str] = Field(default_factory=dict)
    ami_id: str | None = Field(default=None, pattern=r"^ami-[0-9a-f]+$")  # None: Ubuntu 24.04
    working_dir: str = ".deployments"
    mattermost: MattermostSettings = Field(default_factory=MattermostSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    overrides: Overrides = Field(default_factory=Overrides)
    load: LoadSettings = Field(default_factory=LoadSettings)
    ssh: SshSettings = Field(default_factory=SshSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    components: Components = Field(default_factory=Components)
    # An existing server to load: no Mattermost stack is built (app, proxy, database, search,
    # cache, file storage), only the load agents, the coordinator and the metrics node.
    target: TargetSettings | None = None
    aws: AwsSettings = Field(default_factory=AwsSettings)
    terraform: TerraformSettings = Field(default_factory=TerraformSettings)

    @field_validator("tier")
    @classmethod
    def _published_tier(cls, v: int) -> int:
        names = load_catalog().tier_names
        if v not in names:
            raise ValueError(f"unknown tier {v}; published tiers: {', '.join(map(str, names))}")
        return v

    @field_validator("operator_cidrs")
    @classmethod
    def _operator_cidrs(cls, v: list[str], info: ValidationInfo) -> list[str]:
        for cidr in v:
            try:
                net = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR (e.g. 203.0.113.7/32)") from None
            if net.prefixlen == 0:
                raise ValueError(f"{cidr} opens SSH and Grafana to the whole internet; refused")
            if net.version != 4:
                raise ValueError(f"{cidr}: only IPv4 operator CIDRs are supported")
        nets = [ipaddress.ip_network(c, strict=False) for c in v]
        public = public_addresses(nets)
        if public > MAX_PUBLIC_OPERATOR_ADDRESSES and not info.data.get(
            "allow_wide_operator_cidrs"
        ):
            raise ValueError(
                f"together open {public:,} public addresses (more than a /16) to SSH and "
                "Grafana; narrow them, or set allow_wide_operator_cidrs: true"
            )
        return [str(n) for n in nets]

    @field_validator("availability_zones")
    @classmethod
    def _azs(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if v and len(v) < 2:
            raise ValueError("give at least two availability zones (or none for the default)")
        region = info.data.get("region", "")
        bad = [az for az in v if not re.fullmatch(rf"{re.escape(region)}[a-z]", az)]
        if bad:
            raise ValueError(f"{', '.join(bad)} not in region {region}")
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if key.startswith("mmload:") or key.lower().startswith("aws:"):
                raise ValueError(f"tag {key!r}: the mmload: and aws: prefixes are reserved")
            if not re.fullmatch(r"[\w .:/=+@-]{1,128}", key):
                raise ValueError(f"tag {key!r}: invalid tag key")
        return v

    @property
    def workdir(self) -> Path:
        """``<working_dir>/<name>``: ``~`` expanded, a relative working_dir relative to the
        current directory. The one rule provision, configure and the lifecycle all use."""
        return Path(self.working_dir).expanduser() / self.name


def load_deployment(path: str | Path) -> Deployment:
    """Read and validate deployment.yaml (a mistake is a one-line UserError)."""
    return load_model(Deployment, path)


def public_addresses(nets: list[ipaddress.IPv4Network]) -> int:
    """How many public IPv4 addresses ``nets`` cover together (overlaps counted once)."""
    total = 0
    for net in ipaddress.collapse_addresses(nets):
        hidden = sum(
            min(net.num_addresses, np.num_addresses) for np in NON_PUBLIC_V4 if net.overlaps(np)
        )
        total += net.num_addresses - hidden
    return total
