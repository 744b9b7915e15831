"""Preflight: what must hold before a deployment spends money, one PASS/FAIL line per check.

Credentials (sts:GetCallerIdentity), the vCPU quotas of the instance families the deployment
needs (servicequotas:GetServiceQuota, On-Demand quota codes), the instance types offered in the
chosen AZs (ec2:DescribeInstanceTypeOfferings; AZs are picked from the offerings unless
deployment.yaml names them), the license when the sizing needs one, the tarball checksum, the
operator CIDRs, and terraform with the hashicorp/aws provider.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mmload.config.components import registry
from mmload.config.deployment import Deployment
from mmload.lifecycle.aws import Aws, aws_error
from mmload.provision.license import enterprise_features, license_field, license_problem
from mmload.provision.render import read_zones
from mmload.provision.sizing import Sizing, resolve
from mmload.provision.terraform import PLUGIN_DIR_ENV

# On-Demand vCPU quotas of EC2 (service code "ec2"), by instance family prefix.
STANDARD_QUOTA = "L-1216C47A"  # Running On-Demand Standard (A, C, D, H, I, M, R, T, Z)
QUOTA_CODES = {
    **dict.fromkeys("acdhimrtz", STANDARD_QUOTA),
    "f": "L-74FC7D96",
    "g": "L-DB2E81BA",
    "vt": "L-DB2E81BA",
    "inf": "L-1945791B",
    "p": "L-417A185B",
    "x": "L-7295265B",
    "dl": "L-6E869C2A",
    "trn": "L-2C3B7624",
    "u": "L-43DA4232",
    "hpc": "L-F7808C92",
}
QUOTA_NAMES = {STANDARD_QUOTA: "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z)"}
PLACEHOLDER_CIDR = "192.0.2.10/32"  # what `mmload init` writes without --operator-cidr
WIDEST_OPERATOR_PREFIX = 16
MIN_TERRAFORM = (1, 5)
REGISTRY = ("registry.terraform.io", 443)


@dataclass(frozen=True)
class Check:
    """One preflight check's outcome."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        """``PASS name: detail`` or ``FAIL name: detail; fix: ...``."""
        head = f"{'PASS' if self.ok else 'FAIL'} {self.name}: {self.detail}"
        return head if self.ok or not self.fix else f"{head}; fix: {self.fix}"


@dataclass
class Preflight:
    """Every check's outcome, and the AZs picked for the deployment (None: none found)."""

    checks: list[Check] = field(default_factory=list)
    zones: list[str] | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


def ec2_nodes(sizing: Sizing) -> dict[str, int]:
    """Instance type -> count of every EC2 node the deployment runs."""
    out: dict[str, int] = {}
    for comp in registry().components:
        count, kind = sizing.nodes(comp)
        if comp.price == "ec2" and count:
            out[kind] = out.get(kind, 0) + count
    return out


def family_quota(instance_type: str) -> str | None:
    """The On-Demand vCPU quota code of an instance type's family (``c7i.large`` -> standard)."""
    m = re.match(r"([a-z]+?)(?=\d|-)", instance_type)
    if not m:
        return None
    prefix = m.group(1)
    for key in sorted(QUOTA_CODES, key=len, reverse=True):
        if prefix == key or (len(key) > 1 and prefix.startswith(key)):
            return QUOTA_CODES[key]
    return QUOTA_CODES.get(prefix[0])


# -- the checks --------------------------------------------------------------------------------


def check_credentials(dep: Deployment, aws: Aws) -> Check:
    try:
        ident = aws.client("sts").get_caller_identity()
    except Exception as exc:
        return Check(
            "credentials",
            False,
            aws_error(exc),
            "configure AWS credentials (aws configure / aws sso login, or aws.profile in "
            "deployment.yaml)",
        )
    return Check(
        "credentials",
        True,
        f"account {ident['Account']} as {ident['Arn']}, region {dep.region}",
    )


def vcpus_by_type(aws: Aws, types: Iterable[str]) -> dict[str, int]:
    """Default vCPUs of each instance type (unknown types are left out)."""
    out: dict[str, int] = {}
    for kind in sorted(set(types)):
        try:
            found = aws.client("ec2").describe_instance_types(InstanceTypes=[kind])
        except Exception:
            continue
        for info in found.get("InstanceTypes", []):
            out[info["InstanceType"]] = int(info["VCpuInfo"]["DefaultVCpus"])
    return out


def vcpus_in_use(aws: Aws, dep: Deployment, quota: str) -> int:
    """vCPUs of running/pending instances under ``quota``, other than this deployment's own."""
    pages = (
        aws.client("ec2")
        .get_paginator("describe_instances")
        .paginate(Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])
    )
    types: list[str] = []
    for page in pages:
        for res in page["Reservations"]:
            for inst in res["Instances"]:
                tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
                if tags.get("mmload:deployment") == dep.name:
                    continue
                if family_quota(inst["InstanceType"]) == quota:
                    types.append(inst["InstanceType"])
    vcpus = vcpus_by_type(aws, types)
    return sum(vcpus.get(kind, 0) for kind in types)


def check_quotas(dep: Deployment, aws: Aws, sizing: Sizing) -> list[Check]:
    nodes = ec2_nodes(sizing)
    vcpus = vcpus_by_type(aws, nodes)
    unknown = sorted(set(nodes) - set(vcpus))
    checks = []
    if unknown:
        checks.append(
            Check(
                "vCPU quota",
                False,
                f"unknown instance type(s) {', '.join(unknown)} in {dep.region}",
                "use instance types EC2 offers (overrides.* / load.*_instance_type)",
            )
        )
    need: dict[str, int] = {}
    for kind, count in nodes.items():
        code = family_quota(kind)
        if kind in vcpus and code:
            need[code] = need.get(code, 0) + count * vcpus[kind]
    for code, wanted in sorted(need.items()):
        checks.append(quota_check(dep, aws, code, wanted))
    return checks


def quota_check(dep: Deployment, aws: Aws, code: str, wanted: int) -> Check:
    name = f"vCPU quota {code}"
    label = QUOTA_NAMES.get(code, code)
    try:
        quota = aws.client("service-quotas").get_service_quota(ServiceCode="ec2", QuotaCode=code)
        limit = int(quota["Quota"]["Value"])
        used = vcpus_in_use(aws, dep, code)
    except Exception as exc:
        return Check(
            name,
            False,
            f"cannot read {label}: {aws_error(exc)}",
            "allow servicequotas:GetServiceQuota and ec2:DescribeInstances (the shipped policy "
            "does)",
        )
    free = limit - used
    detail = f"{label}: need {wanted}, quota {limit}, in use {used} (free {free})"
    if wanted > free:
        return Check(
            name,
            False,
            detail,
            f"request at least {used + wanted} vCPUs for {code} in Service Quotas "
            f"({dep.region}), or size down",
        )
    return Check(name, True, detail)


def offered_zones(aws: Aws, types: list[str]) -> dict[str, set[str]]:
    """AZ -> which of ``types`` it offers."""
    pages = (
        aws.client("ec2")
        .get_paginator("describe_instance_type_offerings")
        .paginate(
            LocationType="availability-zone",
            Filters=[{"Name": "instance-type", "Values": types}],
        )
    )
    out: dict[str, set[str]] = {}
    for page in pages:
        for offer in page["InstanceTypeOfferings"]:
            out.setdefault(offer["Location"], set()).add(offer["InstanceType"])
    return out


def pick_zones(offered: dict[str, set[str]], types: set[str], previous: list[str]) -> list[str]:
    """Two AZs offering every type: the previously picked ones if they still do."""
    full = sorted(az for az, have in offered.items() if types <= have)
    if len(previous) >= 2 and all(az in full for az in previous):
        return previous[:2]
    return full[:2]


def check_offerings(
    dep: Deployment, aws: Aws, sizing: Sizing, workdir: Path
) -> tuple[Check, list[str]]:
    """The check, and the AZs to use (empty when it failed)."""
    types = set(ec2_nodes(sizing))
    name = "instance types offered"
    try:
        offered = offered_zones(aws, sorted(types))
    except Exception as exc:
        return Check(name, False, aws_error(exc), "allow ec2:DescribeInstanceTypeOfferings"), []
    listed = ", ".join(sorted(types))
    if dep.availability_zones:
        missing = {
            az: sorted(types - offered.get(az, set()))
            for az in dep.availability_zones
            if types - offered.get(az, set())
        }
        if missing:
            where = "; ".join(f"{az} lacks {', '.join(t)}" for az, t in missing.items())
            full = sorted(az for az, have in offered.items() if types <= have)
            fix = (
                f"set availability_zones to AZs offering them ({', '.join(full) or 'none'}), "
                "or remove it to let preflight pick"
            )
            return Check(name, False, where, fix), []
        zones = dep.availability_zones
        return Check(name, True, f"{listed} in {', '.join(zones)}"), zones
    zones = pick_zones(offered, types, read_zones(workdir))
    if len(zones) < 2:
        lacking = sorted(t for t in types if not any(t in have for have in offered.values()))
        why = f"{', '.join(lacking)} not offered in {dep.region}" if lacking else ""
        why = why or f"fewer than two AZs of {dep.region} offer all of {listed}"
        fix = "choose instance types offered in two AZs of the region (overrides.* / load.*)"
        return Check(name, False, why, fix), []
    return Check(name, True, f"{listed} in {', '.join(zones)} (picked)"), zones


def check_license(dep: Deployment, sizing: Sizing, source: str) -> Check:
    """The provisioning stage's license rule, as a check (so preflight never passes a
    deployment that provision then refuses)."""
    problem = license_problem(dep, sizing)
    if problem:
        return Check("license", False, problem, f"set {license_field()} in {source}")
    if dep.target:
        return Check("license", True, f"none needed: the target is {dep.target.url}")
    if dep.mattermost.unlicensed:
        return Check("license", True, "unlicensed: true (one app node, no Enterprise features)")
    needs = ", ".join(enterprise_features(sizing))
    return Check("license", True, f"{dep.mattermost.license_file} (needed for {needs})")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_checksum(dep: Deployment, source: str) -> Check:
    if dep.target:
        return Check("tarball checksum", True, f"none installed: the target is {dep.target.url}")
    mm = dep.mattermost
    tarball = f"mattermost-{mm.version}-linux-amd64.tar.gz"
    if not mm.sha256:
        return Check(
            "tarball checksum",
            False,
            f"the sha256 of {tarball} is unknown (the install refuses an unverified tarball)",
            f"set mattermost.sha256 in {source} (sha256sum of the tarball from "
            "releases.mattermost.com)",
        )
    if mm.tarball_file:
        path = Path(mm.tarball_file).expanduser()
        if not path.is_file():
            return Check(
                "tarball checksum",
                False,
                f"{path} not found",
                f"fix mattermost.tarball_file in {source}",
            )
        actual = file_sha256(path)
        if actual != mm.sha256.lower():
            return Check(
                "tarball checksum",
                False,
                f"{path} has sha256 {actual}, not mattermost.sha256",
                "use the right tarball or checksum",
            )
        return Check("tarball checksum", True, f"{path} matches mattermost.sha256")
    return Check("tarball checksum", True, f"sha256 of {tarball} given")


def check_cidrs(dep: Deployment, source: str) -> Check:
    wide = [
        c for c in dep.operator_cidrs if ipaddress.ip_network(c).prefixlen < WIDEST_OPERATOR_PREFIX
    ]
    if PLACEHOLDER_CIDR in dep.operator_cidrs:
        return Check(
            "operator CIDR",
            False,
            f"{PLACEHOLDER_CIDR} is the placeholder `mmload init` writes",
            f"put your own IP /32 in operator_cidrs in {source}",
        )
    if wide and dep.allow_wide_operator_cidrs:
        return Check(
            "operator CIDR",
            True,
            f"{', '.join(dep.operator_cidrs)} (wider than a /{WIDEST_OPERATOR_PREFIX}: "
            "allowed by allow_wide_operator_cidrs)",
        )
    if wide:
        return Check(
            "operator CIDR",
            False,
            f"{', '.join(wide)} opens SSH and Grafana to more than a /{WIDEST_OPERATOR_PREFIX}",
            f"put your own address (e.g. your IP /32) in operator_cidrs in {source}",
        )
    return Check("operator CIDR", True, ", ".join(dep.operator_cidrs))


def terraform_version(binary: str) -> tuple[int, ...] | None:
    """The terraform CLI's version, None when it cannot be run."""
    if shutil.which(binary) is None:
        return None
    try:
        done = subprocess.run(
            [binary, "version", "-json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={**os.environ, "CHECKPOINT_DISABLE": "1"},
        )
        text = json.loads(done.stdout)["terraform_version"]
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return None
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def provider_in_mirror(plugin_dir: Path) -> list[Path]:
    """hashicorp/aws provider binaries in a ``terraform init -plugin-dir`` mirror."""
    pattern = "registry.terraform.io/hashicorp/aws/*/*/terraform-provider-aws*"
    return sorted(plugin_dir.glob(pattern))


def registry_reachable(address: tuple[str, int] = REGISTRY, timeout: float = 5) -> str | None:
    """None when a TCP connection to the Terraform registry opens, else why not."""
    try:
        socket.create_connection(address, timeout=timeout).close()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def check_terraform(dep: Deployment) -> Check:
    binary = dep.terraform.binary
    version = terraform_version(binary)
    if version is None:
        return Check(
            "terraform",
            False,
            f"cannot run {binary!r}",
            "install Terraform >= 1.5 (or set terraform.binary)",
        )
    shown = ".".join(map(str, version))
    if version[:2] < MIN_TERRAFORM:
        return Check("terraform", False, f"terraform {shown} is too old", "install >= 1.5")
    mirror = dep.terraform.plugin_dir or os.environ.get(PLUGIN_DIR_ENV)
    if mirror:
        found = provider_in_mirror(Path(mirror))
        if not found:
            return Check(
                "terraform",
                False,
                f"terraform {shown}; no hashicorp/aws provider in the mirror {mirror}",
                f"terraform providers mirror {mirror} (or fix terraform.plugin_dir)",
            )
        version_dir = found[-1].parent.parent.name
        return Check("terraform", True, f"terraform {shown}, hashicorp/aws {version_dir} (mirror)")
    why = registry_reachable()
    if why:
        return Check(
            "terraform",
            False,
            f"terraform {shown}; registry.terraform.io unreachable ({why})",
            "allow HTTPS to registry.terraform.io or set terraform.plugin_dir to a mirror",
        )
    return Check("terraform", True, f"terraform {shown}, registry.terraform.io reachable")


def run_preflight(
    dep: Deployment,
    aws: Aws,
    workdir: Path,
    source: str = "deployment.yaml",
    on_check: Callable[[Check], None] | None = None,
) -> Preflight:
    """Every check in order; ``on_check`` sees each as it finishes."""
    sizing = resolve(dep)
    result = Preflight()

    def add(*checks: Check) -> None:
        for check in checks:
            result.checks.append(check)
            if on_check:
                on_check(check)

    creds = check_credentials(dep, aws)
    add(creds)
    if creds.ok:
        add(*check_quotas(dep, aws, sizing))
        offer, zones = check_offerings(dep, aws, sizing, workdir)
        add(offer)
        result.zones = zones or None
    add(
        check_license(dep, sizing, source),
        check_checksum(dep, source),
        check_cidrs(dep, source),
        check_terraform(dep),
    )
    return result
