"""`mmload sweep`: find every deployment whose ``mmload:expires-at`` has passed, from the tags
alone, and (with --yes) remove it without its Terraform state.

Found through the tagging API (``tag:GetResources`` on ``mmload:expires-at``), plus what that
API does not list: IAM roles and instance profiles under ``/mmload/`` carrying the tag, key
pairs and Elastic IPs by tag filter, and the DB/cache subnet groups inside the deployment's
tagged VPC. Removal goes in dependency order, each call on a resource that carries the
deployment's tag (or lives in its tagged VPC), as the operator policy requires.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mmload.lifecycle.aws import Aws, aws_error
from mmload.lifecycle.status import (
    DEPLOYMENT_TAG,
    EXPIRES_TAG,
    OWNER_TAG,
    Tagged,
    deployment_resources,
    kinds,
    live,
    parse_time,
    tagged_resources,
)

IAM_PATH = "/mmload/"
LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped"]
Say = Callable[[str], None]


@dataclass
class Expired:
    """One deployment found by its tags."""

    name: str
    expires_at: datetime | None
    owner: str
    resources: list[Tagged] = field(default_factory=list)

    def line(self, now: datetime) -> str:
        when = self.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.expires_at else "?"
        ago = ""
        if self.expires_at:
            hours = (now - self.expires_at).total_seconds() / 3600
            ago = f" ({hours:.1f} h ago)"
        return (
            f"{self.name}: owner {self.owner or '?'}, expired {when}{ago}, "
            f"{len(self.resources)} resources ({kinds(self.resources)})"
        )


def find_deployments(aws: Aws) -> dict[str, Expired]:
    """Every deployment with an ``mmload:expires-at`` tag in the account and region."""
    found = live(aws, tagged_resources(aws, [{"Key": EXPIRES_TAG}]))
    out: dict[str, Expired] = {}
    for r in found:
        if not r.deployment:
            continue
        dep = out.setdefault(r.deployment, Expired(r.deployment, None, ""))
        dep.resources.append(r)
        expires = parse_time(r.tags.get(EXPIRES_TAG))
        if expires and (dep.expires_at is None or expires < dep.expires_at):
            dep.expires_at = expires
        dep.owner = dep.owner or r.tags.get(OWNER_TAG, "")
    return out


def find_expired(aws: Aws, now: datetime | None = None) -> list[Expired]:
    """The deployments whose expiry has passed, oldest first."""
    now = now or datetime.now(UTC)
    expired = [d for d in find_deployments(aws).values() if d.expires_at and d.expires_at <= now]
    return sorted(expired, key=lambda d: (d.expires_at, d.name))


# -- removal without state ---------------------------------------------------------------------


def _tag_filter(name: str) -> list[dict]:
    return [{"Name": f"tag:{DEPLOYMENT_TAG}", "Values": [name]}]


def _wait(check: Callable[[], bool], what: str, timeout: float = 900, every: float = 2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every)


class Sweeper:
    """Removes one deployment by its tags, in dependency order."""

    def __init__(self, aws: Aws, name: str, say: Say) -> None:
        self.aws, self.name, self.say = aws, name, say
        self.ec2 = aws.client("ec2")

    def ids(self, kind: str, resources: list[Tagged]) -> list[str]:
        return sorted(r.resource_id for r in resources if r.kind == kind)

    def run(self) -> None:
        resources = deployment_resources(self.aws, self.name)
        vpcs = self.ids("ec2:vpc", resources)
        self.instances()
        self.databases(resources, vpcs)
        self.caches_and_search(resources, vpcs)
        self.nat_gateways()
        self.addresses()
        self.interfaces()
        self.security_groups(vpcs)
        self.network(vpcs)
        self.buckets(resources)
        self.iam()
        self.key_pairs()

    def instances(self) -> None:
        pages = self.ec2.get_paginator("describe_instances").paginate(
            Filters=[
                *_tag_filter(self.name),
                {"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES},
            ]
        )
        ids = [i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"]]
        if not ids:
            return
        self.say(f"terminating {len(ids)} instances")
        self.ec2.terminate_instances(InstanceIds=ids)

        def gone() -> bool:
            found = self.ec2.describe_instances(InstanceIds=ids)["Reservations"]
            return all(i["State"]["Name"] == "terminated" for r in found for i in r["Instances"])

        _wait(gone, "instances to terminate")

    def databases(self, resources: list[Tagged], vpcs: list[str]) -> None:
        rds = self.aws.client("rds")
        for db in self.ids("rds:db", resources):
            self.say(f"deleting database instance {db}")
            rds.delete_db_instance(
                DBInstanceIdentifier=db, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
            )
        for cluster in self.ids("rds:cluster", resources):
            self.say(f"deleting database cluster {cluster}")
            rds.delete_db_cluster(DBClusterIdentifier=cluster, SkipFinalSnapshot=True)

        def gone() -> bool:
            left = deployment_resources(self.aws, self.name)
            return not [r for r in left if r.kind in ("rds:db", "rds:cluster")]

        _wait(gone, "the databases to be deleted")
        for group in rds.describe_db_subnet_groups()["DBSubnetGroups"]:
            if group.get("VpcId") in vpcs:
                self.say(f"deleting DB subnet group {group['DBSubnetGroupName']}")
                rds.delete_db_subnet_group(DBSubnetGroupName=group["DBSubnetGroupName"])

    def caches_and_search(self, resources: list[Tagged], vpcs: list[str]) -> None:
        groups = [r for r in resources if r.kind == "elasticache:replicationgroup"]
        domains = [r for r in resources if r.kind == "es:domain"]
        if groups:
            cache = self.aws.client("elasticache")
            for g in groups:
                self.say(f"deleting cache {g.resource_id}")
                cache.delete_replication_group(ReplicationGroupId=g.resource_id.split(":")[-1])
        for d in domains:
            self.say(f"deleting search domain {d.resource_id}")
            self.aws.client("opensearch").delete_domain(DomainName=d.resource_id.split("/")[-1])
        if groups:
            _wait(
                lambda: (
                    not [
                        r
                        for r in deployment_resources(self.aws, self.name)
                        if r.kind == "elasticache:replicationgroup"
                    ]
                ),
                "the cache to be deleted",
            )
            cache = self.aws.client("elasticache")
            for sub in cache.describe_cache_subnet_groups()["CacheSubnetGroups"]:
                if sub.get("VpcId") in vpcs:
                    cache.delete_cache_subnet_group(
                        CacheSubnetGroupName=sub["CacheSubnetGroupName"]
                    )

    def nat_gateways(self) -> None:
        nats = [
            n["NatGatewayId"]
            for n in self.ec2.describe_nat_gateways(Filter=_tag_filter(self.name))["NatGateways"]
            if n["State"] not in ("deleted", "deleting")
        ]
        for nat in nats:
            self.say(f"deleting NAT gateway {nat}")
            self.ec2.delete_nat_gateway(NatGatewayId=nat)
        if nats:

            def gone() -> bool:
                found = self.ec2.describe_nat_gateways(NatGatewayIds=nats)["NatGateways"]
                return all(n["State"] == "deleted" for n in found)

            _wait(gone, "NAT gateways to be deleted")

    def addresses(self) -> None:
        for addr in self.ec2.describe_addresses(Filters=_tag_filter(self.name))["Addresses"]:
            if addr.get("AssociationId"):
                self.ec2.disassociate_address(AssociationId=addr["AssociationId"])
            self.say(f"releasing Elastic IP {addr.get('PublicIp')}")
            self.ec2.release_address(AllocationId=addr["AllocationId"])

    def interfaces(self) -> None:
        """The agents' own network interfaces (load.agent_private_ips): made before their
        instances, they outlive them (detached, ``available``)."""
        found = self.ec2.describe_network_interfaces(Filters=_tag_filter(self.name))
        for eni in found["NetworkInterfaces"]:
            if eni.get("Status") == "available":
                self.say(f"deleting network interface {eni['NetworkInterfaceId']}")
                self.ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])

    def security_groups(self, vpcs: list[str]) -> None:
        groups = self.ec2.describe_security_groups(Filters=_tag_filter(self.name))["SecurityGroups"]
        for g in groups:  # rules naming each other first, or no group can be deleted
            if g["IpPermissions"]:
                self.ec2.revoke_security_group_ingress(
                    GroupId=g["GroupId"], IpPermissions=g["IpPermissions"]
                )
            if g["IpPermissionsEgress"]:
                self.ec2.revoke_security_group_egress(
                    GroupId=g["GroupId"], IpPermissions=g["IpPermissionsEgress"]
                )
        for g in groups:
            if g["GroupName"] != "default":
                self.say(f"deleting security group {g['GroupName']}")
                self.ec2.delete_security_group(GroupId=g["GroupId"])

    def network(self, vpcs: list[str]) -> None:
        tagged = _tag_filter(self.name)
        for table in self.ec2.describe_route_tables(Filters=tagged)["RouteTables"]:
            for assoc in table.get("Associations", []):
                if not assoc.get("Main"):
                    self.ec2.disassociate_route_table(
                        AssociationId=assoc["RouteTableAssociationId"]
                    )
            if not any(a.get("Main") for a in table.get("Associations", [])):
                self.say(f"deleting route table {table['RouteTableId']}")
                self.ec2.delete_route_table(RouteTableId=table["RouteTableId"])
        for subnet in self.ec2.describe_subnets(Filters=tagged)["Subnets"]:
            self.say(f"deleting subnet {subnet['SubnetId']}")
            self.ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        for igw in self.ec2.describe_internet_gateways(Filters=tagged)["InternetGateways"]:
            for att in igw.get("Attachments", []):
                self.ec2.detach_internet_gateway(
                    InternetGatewayId=igw["InternetGatewayId"], VpcId=att["VpcId"]
                )
            self.say(f"deleting internet gateway {igw['InternetGatewayId']}")
            self.ec2.delete_internet_gateway(InternetGatewayId=igw["InternetGatewayId"])
        for vpc in vpcs:
            self.say(f"deleting VPC {vpc}")
            self.ec2.delete_vpc(VpcId=vpc)

    def untagged_buckets(self, tagged: list[str]) -> list[str]:
        """This deployment's file buckets that carry no tags: an apply killed between S3's
        CreateBucket and PutBucketTagging leaves one (named by Terraform's ``bucket_prefix``,
        ``<name>-files-<timestamp>``), and the resumed apply makes another."""
        pattern = re.compile(rf"^{re.escape(self.name)}-files-\d{{20,}}$")
        listed = self.aws.client("s3").list_buckets().get("Buckets", [])
        return sorted(
            b["Name"] for b in listed if pattern.match(b["Name"]) and b["Name"] not in tagged
        )

    def buckets(self, resources: list[Tagged]) -> None:
        s3 = self.aws.client("s3")
        tagged = self.ids("s3:bucket", resources)
        orphans = self.untagged_buckets(tagged)
        for bucket in orphans:
            self.say(f"bucket {bucket} has no tags (left by an interrupted apply)")
        for bucket in [*tagged, *orphans]:
            self.say(f"emptying and deleting bucket {bucket}")
            pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
            for page in pages:
                objects = [
                    {"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
                ]
                for obj in objects:
                    s3.delete_object(Bucket=bucket, **obj)
            s3.delete_bucket(Bucket=bucket)

    def iam(self) -> None:
        iam = self.aws.client("iam")
        profiles = iam.get_paginator("list_instance_profiles").paginate(PathPrefix=IAM_PATH)
        roles = iam.get_paginator("list_roles").paginate(PathPrefix=IAM_PATH)
        mine = []
        for page in roles:
            for role in page["Roles"]:
                tags = iam.get_role(RoleName=role["RoleName"])["Role"].get("Tags", [])
                if {t["Key"]: t["Value"] for t in tags}.get(DEPLOYMENT_TAG) == self.name:
                    mine.append(role["RoleName"])
        for page in profiles:
            for prof in page["InstanceProfiles"]:
                roles_in = [r["RoleName"] for r in prof.get("Roles", [])]
                tags = iam.get_instance_profile(InstanceProfileName=prof["InstanceProfileName"])[
                    "InstanceProfile"
                ].get("Tags", [])
                owned = {t["Key"]: t["Value"] for t in tags}.get(DEPLOYMENT_TAG) == self.name
                if not owned:
                    continue
                for role in roles_in:
                    iam.remove_role_from_instance_profile(
                        InstanceProfileName=prof["InstanceProfileName"], RoleName=role
                    )
                self.say(f"deleting instance profile {prof['InstanceProfileName']}")
                iam.delete_instance_profile(InstanceProfileName=prof["InstanceProfileName"])
        for role in mine:
            for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
                iam.delete_role_policy(RoleName=role, PolicyName=policy)
            for att in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=role, PolicyArn=att["PolicyArn"])
            for prof in iam.list_instance_profiles_for_role(RoleName=role)["InstanceProfiles"]:
                iam.remove_role_from_instance_profile(
                    InstanceProfileName=prof["InstanceProfileName"], RoleName=role
                )
            self.say(f"deleting role {role}")
            iam.delete_role(RoleName=role)

    def key_pairs(self) -> None:
        for key in self.ec2.describe_key_pairs(Filters=_tag_filter(self.name))["KeyPairs"]:
            self.say(f"deleting key pair {key['KeyName']}")
            self.ec2.delete_key_pair(KeyName=key["KeyName"])


def sweep(aws: Aws, name: str, say: Say) -> list[Tagged]:
    """Remove deployment ``name`` by its tags; return what is still tagged afterwards."""
    try:
        Sweeper(aws, name, say).run()
    except TimeoutError as exc:
        say(f"{name}: {exc}")
    except Exception as exc:  # one AWS refusal: report it, the leftovers list says the rest
        say(f"{name}: stopped: {aws_error(exc)}")
    return deployment_resources(aws, name)
