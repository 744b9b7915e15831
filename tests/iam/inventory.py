"""Read what exists in the emulator into an ``Inventory``: tags, associations, roles, secrets.

Taken between the recorded steps (the recorder is paused meanwhile, so these reads are not
evaluated). It is what AWS would know when it authorizes a call: the tags each resource
carries and which route table or address an association id belongs to.
"""

from __future__ import annotations

from tests.iam.aws_calls import Inventory, ec2_arn, rds_arn


def _tags(items: list[dict] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in items or []}


def snapshot(client, region: str = "us-east-1") -> Inventory:
    """``client(service)`` returns a boto3 client for the emulator."""
    inv = Inventory()
    ec2 = client("ec2")

    def put(rtype: str, rid: str, tags: list[dict] | None) -> None:
        inv.tags[ec2_arn(region, rtype, rid)] = _tags(tags)

    for v in ec2.describe_vpcs()["Vpcs"]:
        put("vpc", v["VpcId"], v.get("Tags"))
    for s in ec2.describe_subnets()["Subnets"]:
        put("subnet", s["SubnetId"], s.get("Tags"))
    for g in ec2.describe_security_groups()["SecurityGroups"]:
        put("security-group", g["GroupId"], g.get("Tags"))
    for g in ec2.describe_internet_gateways()["InternetGateways"]:
        put("internet-gateway", g["InternetGatewayId"], g.get("Tags"))
    for n in ec2.describe_nat_gateways()["NatGateways"]:
        put("natgateway", n["NatGatewayId"], n.get("Tags"))
    for rt in ec2.describe_route_tables()["RouteTables"]:
        put("route-table", rt["RouteTableId"], rt.get("Tags"))
        for a in rt.get("Associations", []):
            joined = [("route-table", rt["RouteTableId"])]
            if a.get("SubnetId"):
                joined.append(("subnet", a["SubnetId"]))
            inv.associations[a["RouteTableAssociationId"]] = joined
    for a in ec2.describe_addresses()["Addresses"]:
        put("elastic-ip", a["AllocationId"], a.get("Tags"))
        if a.get("AssociationId"):
            joined = [("elastic-ip", a["AllocationId"])]
            if a.get("NetworkInterfaceId"):
                joined.append(("network-interface", a["NetworkInterfaceId"]))
            inv.associations[a["AssociationId"]] = joined
    for r in ec2.describe_instances()["Reservations"]:
        for i in r["Instances"]:
            put("instance", i["InstanceId"], i.get("Tags"))
    for v in ec2.describe_volumes()["Volumes"]:
        put("volume", v["VolumeId"], v.get("Tags"))
    for n in ec2.describe_network_interfaces()["NetworkInterfaces"]:
        put("network-interface", n["NetworkInterfaceId"], n.get("TagSet"))
    for k in ec2.describe_key_pairs()["KeyPairs"]:
        put("key-pair", k["KeyName"], k.get("Tags"))

    iam = client("iam")
    for role in iam.list_roles()["Roles"]:
        full = iam.get_role(RoleName=role["RoleName"])["Role"]
        boundary = full.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
        inv.roles[role["RoleName"]] = {"path": role["Path"], "boundary": boundary}
        inv.tags[full["Arn"]] = _tags(full.get("Tags"))
    for p in iam.list_instance_profiles()["InstanceProfiles"]:
        roles = [r["RoleName"] for r in p["Roles"]]
        inv.profiles[p["InstanceProfileName"]] = {"path": p["Path"], "roles": roles}
        inv.tags[p["Arn"]] = _tags(p.get("Tags"))

    rds = client("rds")
    for c in rds.describe_db_clusters()["DBClusters"]:
        inv.tags[c["DBClusterArn"]] = _tags(c.get("TagList"))
        if secret := c.get("MasterUserSecret", {}).get("SecretArn"):
            inv.master_secrets[c["DBClusterArn"]] = secret
    for d in rds.describe_db_instances()["DBInstances"]:
        inv.tags[d["DBInstanceArn"]] = _tags(d.get("TagList"))
        if secret := d.get("MasterUserSecret", {}).get("SecretArn"):
            inv.master_secrets[d["DBInstanceArn"]] = secret
    for g in rds.describe_db_subnet_groups()["DBSubnetGroups"]:
        arn = g.get("DBSubnetGroupArn") or rds_arn(region, "subgrp", g["DBSubnetGroupName"])
        inv.tags[arn] = _tags(rds.list_tags_for_resource(ResourceName=arn)["TagList"])

    sm = client("secretsmanager")
    for s in sm.list_secrets()["SecretList"]:
        inv.secrets[s["ARN"]] = s["ARN"]
        inv.secrets[s["Name"]] = s["ARN"]
        inv.tags[s["ARN"]] = _tags(s.get("Tags"))
    return inv
