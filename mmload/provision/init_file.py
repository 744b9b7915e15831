"""The commented starting deployment.yaml that `mmload init --tier N` writes."""

from __future__ import annotations

import json

from mmload.config.catalog import load_catalog
from mmload.config.deployment import Deployment

PLACEHOLDER_CIDR = "192.0.2.10/32"  # RFC 5737 documentation address: replace with your own


def deployment_yaml(
    *,
    tier: int,
    name: str,
    region: str,
    cidrs: list[str],
    license_file: str | None = None,
    unlicensed: bool = False,
) -> str:
    """A deployment.yaml for ``tier`` with every section explained; defaults shown commented."""
    cat = load_catalog()
    t = cat.tier(tier)
    assert t is not None
    defaults = Deployment(name="defaults", tier=tier, operator_cidrs=[PLACEHOLDER_CIDR])
    db, mm, lt = defaults.database, defaults.mattermost, cat.load_test
    cidr_lines = "\n".join(f"  - {c}" for c in (cidrs or [PLACEHOLDER_CIDR]))
    cidr_note = (
        ""
        if cidrs
        else "# REPLACE the placeholder below (a documentation address) with your own IP/32.\n"
    )
    license_lines = _license_lines(license_file, unlicensed)
    return f"""\
# mmload deployment: what `mmload infra plan|apply|destroy -c <this file>` builds in AWS.
# Written by `mmload init --tier {tier}`. Every commented line shows the default.

# Prefix of every AWS resource: 3-25 characters, lowercase letters, digits and dashes.
name: {name}
region: {region}
# availability_zones: [{region}a, {region}b]   # default: the region's first two

# Mattermost's reference architecture for up to {tier:,} concurrent users
# ({t.source}):
#   app {t.app.count} x {t.app.instance_type}, database 1 writer + {t.database.readers} readers \
x {t.database.instance_class},
#   search {t.search.count} x {t.search.instance_type}, proxy {t.proxy.count} x \
{t.proxy.instance_type}, redis {t.cache.count}.
# `mmload architectures` lists every tier with its cost per hour.
tier: {tier}

# Who may reach SSH and Grafana. Required; together at most a /16 of public addresses
# (0.0.0.0/0 is refused; a wider set needs allow_wide_operator_cidrs: true).
{cidr_note}operator_cidrs:
{cidr_lines}

# owner: you@example.com       # tag mmload:owner (default: your local user name)
ttl_hours: {defaults.ttl_hours}                    # tag mmload:expires-at = first render + ttl
# tags: {{CostCenter: perf}}   # extra tags on every resource
# working_dir: {defaults.working_dir}     # holds rendered HCL, state, plan, outputs.json, SSH key
# ami_id: ami-...              # default: latest Canonical Ubuntu 24.04 LTS amd64

mattermost:
  version: "{mm.version}"
  # download_url: https://releases.mattermost.com/...   # default: the official tarball
  # sha256: ...
{license_lines}
database:
  engine: {db.engine}       # or: postgres (RDS for PostgreSQL)
  # engine_version: "{db.engine_version}"
  # The master password is RDS-managed (Secrets Manager); it is never written anywhere.

# network:                     # default: a new VPC {defaults.network.vpc_cidr} over two AZs
#   existing_vpc_id: vpc-...
#   existing_public_subnet_ids: [subnet-..., subnet-...]
#   existing_private_subnet_ids: [subnet-..., subnet-...]

# overrides:                   # replace the tier's published sizes
#   app_nodes: {t.app.count}
#   app_instance_type: {t.app.instance_type}
#   db_readers: {t.database.readers}
#   db_instance_class: {t.database.instance_class}

# load:
#   target_users: {tier}         # default: the tier's users
#   # Agents = ceil(target_users / users_per_agent); default {lt.users_per_agent:,} per \
{lt.agent_instance_type}.
#   users_per_agent: {lt.users_per_agent}

# ssh:
#   public_key_file: ~/.ssh/id_ed25519.pub   # default: a key generated into working_dir

# components:                  # switch parts off (e.g. for an AWS emulator that lacks them)
#   search: true
#   cache: true
#   detailed_monitoring: true

# aws:
#   profile: my-profile        # default: the standard AWS credential chain
#   endpoint_url: http://127.0.0.1:5000   # an AWS emulator (moto, LocalStack)

# terraform:
#   plugin_dir: /opt/tf-plugins   # offline provider mirror (or env MMLOAD_TF_PLUGIN_DIR)
#   backend: local                # or s3 with state_bucket + lock_table (DynamoDB)
"""


def _license_lines(license_file: str | None, unlicensed: bool) -> str:
    """The license part of the `mattermost:` section (see provision/license.py)."""
    note = "  # Clustering (2+ app nodes), OpenSearch and /metrics need an Enterprise license.\n"
    if unlicensed:
        return note + "  unlicensed: true   # one app node, no OpenSearch, no Redis, no /metrics\n"
    if license_file:
        return note + f"  license_file: {json.dumps(license_file)}\n"
    return note + "  # license_file: ./mattermost.license\n"
