"""From moto's request recording to the IAM authorizations each recorded AWS call needs.

``decode`` turns one recorded HTTP request into a ``Call``: the service from the SigV4
credential scope (``Credential=KEY/DATE/REGION/SERVICE/aws4_request``), the operation from
``Action=`` (query/form protocols: EC2, IAM, RDS, STS, ElastiCache), ``X-Amz-Target`` (JSON
protocols: Secrets Manager, Resource Groups Tagging, DynamoDB, KMS) or the REST route (S3,
OpenSearch). Anything it cannot name raises ``Unmapped``: a new kind of call fails the test
until it is mapped, never slips through.

``authorizations`` turns a ``Call`` into ``Request``s for the evaluator, following the Service
Authorization Reference (parliament's bundled ``iam_definition.json``): one per resource the
action is authorized against (the resources the call names, the resources it creates, and AWS
defaults it uses, such as the default DB parameter group), each with its condition keys:
``aws:RequestTag/*`` and ``aws:TagKeys`` (for EC2 per TagSpecification resource type, for the
other services the request's tag list), ``aws:ResourceTag/*`` (the resource's tags as the
``Inventory`` knew them at that point of the recording), ``iam:PermissionsBoundary``,
``iam:PassedToService``... plus the dependent authorizations AWS performs for the same call
(``ec2:CreateTags`` for tag-on-create, ``iam:PassRole`` for an instance profile, ``iam:TagRole``,
``rds:AddTagsToResource``, the RDS-managed secret's ``secretsmanager:CreateSecret``...).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree

from tests.iam.policy_eval import Request

ACCOUNT = "123456789012"  # moto's default account
CREDENTIAL = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
# The signing name in the credential scope -> the IAM service prefix.
IAM_PREFIX = {"tagging": "tag", "monitoring": "cloudwatch", "email": "ses"}


class Unmapped(Exception):
    """A recorded request this module cannot turn into an IAM action (add it to the tables)."""


@dataclass
class Call:
    """One recorded AWS API call."""

    index: int
    service: str  # IAM prefix: ec2, iam, rds, s3, secretsmanager, tag, sts, es, dynamodb, kms ...
    region: str
    operation: str  # the IAM action name without prefix, e.g. RunInstances, PutBucketTagging
    params: dict[str, str] = field(default_factory=dict)  # query/form fields or JSON members
    body: str = ""
    path: str = "/"
    query: dict[str, str] = field(default_factory=dict)

    @property
    def action(self) -> str:
        return f"{self.service}:{self.operation}"

    def indexed(self, prefix: str) -> list[str]:
        """Values of ``prefix.1``, ``prefix.2``... (query protocol lists)."""
        pat = re.compile(rf"^{re.escape(prefix)}\.\d+$")
        return [v for k, v in sorted(self.params.items()) if pat.match(k)]


def _body_text(entry: dict) -> str:
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    return body


def decode(index: int, entry: dict) -> Call | None:
    """A ``Call`` for one recording entry; None for moto's own API (``/moto-api/``)."""
    url = urlsplit(entry["url"])
    if url.path.startswith("/moto-api"):
        return None
    headers = {k.lower(): v for k, v in entry["headers"].items()}
    m = CREDENTIAL.search(headers.get("authorization", ""))
    if not m:
        raise Unmapped(f"#{index} {entry['method']} {url.path}: no SigV4 credential scope")
    region, signing_name = m.groups()
    service = IAM_PREFIX.get(signing_name, signing_name)
    body = _body_text(entry)
    query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    call = Call(index, service, region, "", body=body, path=unquote(url.path), query=query)
    if target := headers.get("x-amz-target"):
        call.operation = target.rsplit(".", 1)[-1]
        call.params = json.loads(body) if body.strip() else {}
    elif "Action" in query or "Action=" in body:
        form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        call.params = {**query, **form}
        call.operation = call.params.pop("Action")
        call.params.pop("Version", None)
    elif service == "s3":
        call.operation = s3_operation(entry["method"], call)
    elif service == "es":
        call.operation = opensearch_operation(entry["method"], call)
    else:
        raise Unmapped(f"#{index} {service} {entry['method']} {url.path}: unknown protocol")
    call.operation = OPERATION_TO_ACTION.get((service, call.operation), call.operation)
    return call


def decode_recording(text: str) -> list[Call]:
    """Every AWS call in a ``/moto-api/recorder/download-recording`` answer, in order."""
    calls = []
    for i, line in enumerate(ln for ln in text.splitlines() if ln.strip()):
        call = decode(i, json.loads(line))
        if call is not None:
            calls.append(call)
    return calls


# API operations whose IAM action has another name (Service Authorization Reference).
OPERATION_TO_ACTION = {
    ("s3", "HeadBucket"): "ListBucket",
    ("s3", "ListObjects"): "ListBucket",
    ("s3", "ListObjectsV2"): "ListBucket",
    ("s3", "ListObjectVersions"): "ListBucketVersions",
    ("s3", "HeadObject"): "GetObject",
    ("s3", "DeleteObjects"): "DeleteObject",
}

# S3 REST routes: (method, subresource) -> operation; bucket-level when the path has no key.
S3_BUCKET_ROUTES = {
    ("PUT", ""): "CreateBucket",
    ("DELETE", ""): "DeleteBucket",
    ("HEAD", ""): "HeadBucket",
    ("GET", ""): "ListObjects",
    ("GET", "versions"): "ListObjectVersions",
    ("GET", "uploads"): "ListBucketMultipartUploads",
    ("GET", "location"): "GetBucketLocation",
    ("POST", "delete"): "DeleteObjects",
}
# Subresources with Get/Put (and Delete, authorized as Put unless named) actions.
S3_SUBRESOURCES = {
    "accelerate": ("GetAccelerateConfiguration", "PutAccelerateConfiguration", None),
    "acl": ("GetBucketAcl", "PutBucketAcl", None),
    "cors": ("GetBucketCORS", "PutBucketCORS", "PutBucketCORS"),
    "encryption": (
        "GetEncryptionConfiguration",
        "PutEncryptionConfiguration",
        "PutEncryptionConfiguration",
    ),
    "lifecycle": (
        "GetLifecycleConfiguration",
        "PutLifecycleConfiguration",
        "PutLifecycleConfiguration",
    ),
    "logging": ("GetBucketLogging", "PutBucketLogging", None),
    "notification": ("GetBucketNotification", "PutBucketNotification", None),
    "object-lock": (
        "GetBucketObjectLockConfiguration",
        "PutBucketObjectLockConfiguration",
        None,
    ),
    "ownershipControls": (
        "GetBucketOwnershipControls",
        "PutBucketOwnershipControls",
        "PutBucketOwnershipControls",
    ),
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "publicAccessBlock": (
        "GetBucketPublicAccessBlock",
        "PutBucketPublicAccessBlock",
        "PutBucketPublicAccessBlock",
    ),
    "replication": (
        "GetReplicationConfiguration",
        "PutReplicationConfiguration",
        "PutReplicationConfiguration",
    ),
    "requestPayment": ("GetBucketRequestPayment", "PutBucketRequestPayment", None),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "PutBucketTagging"),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", None),
    "website": ("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
}
S3_OBJECT_ROUTES = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject"}


def s3_bucket_and_key(call: Call) -> tuple[str, str]:
    """Path-style ``/bucket/key`` (mmload points the provider at emulators path-style)."""
    parts = call.path.lstrip("/").split("/", 1)
    return parts[0], parts[1] if len(parts) > 1 else ""


S3_PLAIN_PARAMS = {
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "encoding-type",
    "continuation-token",
    "start-after",
    "fetch-owner",
    "key-marker",
    "version-id-marker",
    "marker",
    "x-id",
    "versionId",
}
S3_OTHER_SUBRESOURCES = {"versions", "uploads", "location", "delete"}


def s3_operation(method: str, call: Call) -> str:
    bucket, key = s3_bucket_and_key(call)
    subs = [k for k in call.query if k not in S3_PLAIN_PARAMS]
    unknown = [k for k in subs if k not in S3_SUBRESOURCES and k not in S3_OTHER_SUBRESOURCES]
    if unknown or len(subs) > 1:
        raise Unmapped(f"#{call.index} s3 {method} {call.path}?{'&'.join(call.query)}")
    sub = subs[0] if subs else ""
    if not bucket:
        if method == "GET":
            return "ListAllMyBuckets"
        raise Unmapped(f"#{call.index} s3 {method} /")
    if key and not sub:
        if method == "DELETE":
            return "DeleteObjectVersion" if "versionId" in call.query else "DeleteObject"
        if method == "GET" and "versionId" in call.query:
            return "GetObjectVersion"
        if method in S3_OBJECT_ROUTES:
            return S3_OBJECT_ROUTES[method]
    if not key:
        if (method, sub) in S3_BUCKET_ROUTES:
            return S3_BUCKET_ROUTES[(method, sub)]
        if sub in S3_SUBRESOURCES:
            get, put, delete = S3_SUBRESOURCES[sub]
            chosen = {"GET": get, "PUT": put, "DELETE": delete}.get(method)
            if chosen:
                return chosen
    raise Unmapped(f"#{call.index} s3 {method} {call.path}?{'&'.join(call.query)}")


# OpenSearch Service REST routes (API version 2021-01-01): (method, route regex) -> operation.
OPENSEARCH_ROUTES = [
    ("POST", r"/2021-01-01/opensearch/domain", "CreateDomain"),
    ("GET", r"/2021-01-01/opensearch/domain/[^/]+", "DescribeDomain"),
    ("DELETE", r"/2021-01-01/opensearch/domain/[^/]+", "DeleteDomain"),
    ("GET", r"/2021-01-01/opensearch/domain/[^/]+/config", "DescribeDomainConfig"),
    ("POST", r"/2021-01-01/opensearch/domain/[^/]+/config", "UpdateDomainConfig"),
    ("POST", r"/2021-01-01/opensearch/domain-info", "DescribeDomains"),
    ("GET", r"/2021-01-01/domain", "ListDomainNames"),
    ("GET", r"/2021-01-01/opensearch/compatibleVersions", "GetCompatibleVersions"),
    ("POST", r"/2021-01-01/tags/?", "AddTags"),
    ("GET", r"/2021-01-01/tags/?", "ListTags"),
    ("POST", r"/2021-01-01/tags-removal/?", "RemoveTags"),
]


def opensearch_operation(method: str, call: Call) -> str:
    for verb, route, operation in OPENSEARCH_ROUTES:
        if verb == method and re.fullmatch(route, call.path):
            if call.body.strip():
                call.params = json.loads(call.body)
            return operation
    raise Unmapped(f"#{call.index} es {method} {call.path}")


# --- resources -------------------------------------------------------------------------------

EC2_ID_TYPES = {
    "vpc": "vpc",
    "subnet": "subnet",
    "sg": "security-group",
    "sgr": "security-group-rule",
    "igw": "internet-gateway",
    "nat": "natgateway",
    "rtb": "route-table",
    "eipalloc": "elastic-ip",
    "i": "instance",
    "vol": "volume",
    "eni": "network-interface",
    "ami": "image",
    "key": "key-pair",
}
# Query parameters that name an existing EC2 resource (value, or .N lists of values).
EC2_PARAMS = {
    "VpcId": "vpc",
    "SubnetId": "subnet",
    "GroupId": "security-group",
    "SecurityGroupId": "security-group",
    "InternetGatewayId": "internet-gateway",
    "RouteTableId": "route-table",
    "NatGatewayId": "natgateway",
    "AllocationId": "elastic-ip",
    "InstanceId": "instance",
    "VolumeId": "volume",
    "NetworkInterfaceId": "network-interface",
    "ImageId": "image",
    "KeyName": "key-pair",
    "ResourceId": None,  # CreateTags/DeleteTags: the type comes from the id's prefix
}
# What each EC2 create operation creates (the resource its TagSpecification may tag).
EC2_CREATES = {
    "AllocateAddress": ["elastic-ip"],
    "CreateInternetGateway": ["internet-gateway"],
    "CreateNatGateway": ["natgateway"],
    "CreateRouteTable": ["route-table"],
    "CreateSecurityGroup": ["security-group"],
    "CreateSubnet": ["subnet"],
    "CreateVpc": ["vpc"],
    "ImportKeyPair": ["key-pair"],
    "RunInstances": ["instance", "volume", "network-interface"],
    "AuthorizeSecurityGroupIngress": ["security-group-rule"],
    "AuthorizeSecurityGroupEgress": ["security-group-rule"],
}


def ec2_arn(region: str, rtype: str, rid: str) -> str:
    if rtype == "image":
        return f"arn:aws:ec2:{region}::image/{rid}"
    return f"arn:aws:ec2:{region}:{ACCOUNT}:{rtype}/{rid}"


def ec2_type_of(rid: str) -> str:
    prefix = rid.split("-", 1)[0]
    if prefix not in EC2_ID_TYPES:
        raise Unmapped(f"EC2 id {rid}: unknown resource type")
    return EC2_ID_TYPES[prefix]


@dataclass
class Target:
    """A resource an authorization is evaluated against."""

    arn: str
    rtype: str
    created: bool = False
    request_tags: dict[str, str] | None = None  # the tags the request gives it (created ones)


def ec2_request_tags(call: Call) -> dict[str, dict[str, str]]:
    """TagSpecification.N: resource type -> tags."""
    out: dict[str, dict[str, str]] = {}
    for key, rtype in call.params.items():
        m = re.fullmatch(r"TagSpecification\.(\d+)\.ResourceType", key)
        if not m:
            continue
        n = m.group(1)
        tags = {}
        for k, v in call.params.items():
            km = re.fullmatch(rf"TagSpecification\.{n}\.Tag\.(\d+)\.Key", k)
            if km:
                tags[v] = call.params.get(f"TagSpecification.{n}.Tag.{km.group(1)}.Value", "")
        out[rtype] = tags
    return out


def query_tags(call: Call, prefix: str) -> dict[str, str]:
    """``prefix.N.Key``/``prefix.N.Value`` pairs (EC2 ``Tag``, RDS ``Tags.Tag``...)."""
    tags = {}
    for k, v in call.params.items():
        m = re.fullmatch(rf"{re.escape(prefix)}\.(\d+)\.Key", k)
        if m:
            tags[v] = call.params.get(f"{prefix}.{m.group(1)}.Value", "")
    return tags


def ec2_targets(call: Call, inv: Inventory) -> list[Target]:
    targets: list[Target] = []
    for key, value in call.params.items():
        base = re.sub(r"^NetworkInterface\.\d+\.", "", key)
        base = re.sub(r"\.\d+$", "", base)
        if base not in EC2_PARAMS:
            continue
        rtype = EC2_PARAMS[base] or ec2_type_of(value)
        if base == "KeyName" and call.operation == "ImportKeyPair":
            continue  # the key pair being created
        targets.append(Target(ec2_arn(call.region, rtype, value), rtype))
    if assoc := call.params.get("AssociationId"):
        for rtype, rid in inv.associations.get(assoc, []):
            targets.append(Target(ec2_arn(call.region, rtype, rid), rtype))
    if call.operation == "ImportKeyPair":
        targets.append(Target(ec2_arn(call.region, "key-pair", call.params["KeyName"]), "key-pair"))
        targets[-1].created = True
    specs = ec2_request_tags(call)
    for rtype in EC2_CREATES.get(call.operation, []):
        if rtype == "key-pair":
            targets[-1].request_tags = specs.get(rtype)
            continue
        targets.append(Target(ec2_arn(call.region, rtype, "new"), rtype, True, specs.get(rtype)))
    return targets


def iam_targets(call: Call, inv: Inventory) -> list[Target]:
    creates_role = call.operation == "CreateRole"
    creates_profile = call.operation == "CreateInstanceProfile"
    targets = []
    if role := call.params.get("RoleName"):
        path = call.params.get("Path", "/") if creates_role else inv.role_path(role)
        targets.append(Target(f"arn:aws:iam::{ACCOUNT}:role{path}{role}", "role", creates_role))
    if profile := call.params.get("InstanceProfileName"):
        path = call.params.get("Path", "/") if creates_profile else inv.profile_path(profile)
        arn = f"arn:aws:iam::{ACCOUNT}:instance-profile{path}{profile}"
        targets.insert(0, Target(arn, "instance-profile", creates_profile))
    if service := call.params.get("AWSServiceName"):
        name = SERVICE_LINKED_ROLES.get(service, "unknown")
        arn = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/{service}/{name}"
        targets.append(Target(arn, "role", True))
    if arn := call.params.get("PolicyArn"):
        targets.append(Target(arn, "policy"))
    return targets


SERVICE_LINKED_ROLES = {
    "rds.amazonaws.com": "AWSServiceRoleForRDS",
    "opensearchservice.amazonaws.com": "AWSServiceRoleForAmazonOpenSearchService",
    "elasticache.amazonaws.com": "AWSServiceRoleForElastiCache",
}
RDS_PARAMS = {
    "DBClusterIdentifier": ("cluster", "CreateDBCluster"),
    "DBInstanceIdentifier": ("db", "CreateDBInstance CreateDBInstanceReadReplica"),
    "SourceDBInstanceIdentifier": ("db", ""),
    "DBSubnetGroupName": ("subgrp", "CreateDBSubnetGroup"),
    "DBClusterParameterGroupName": ("cluster-pg", "CreateDBClusterParameterGroup"),
    "DBParameterGroupName": ("pg", "CreateDBParameterGroup"),
    "OptionGroupName": ("og", "CreateOptionGroup"),
}


def rds_targets(call: Call, inv: Inventory) -> list[Target]:
    targets = []
    for param, (rtype, creators) in RDS_PARAMS.items():
        if value := call.params.get(param):
            arn = value if value.startswith("arn:") else rds_arn(call.region, rtype, value)
            targets.append(Target(arn, rtype, call.operation in creators.split()))
    if name := call.params.get("ResourceName"):
        targets.append(Target(name, name.split(":")[5]))
    return targets


def rds_arn(region: str, rtype: str, name: str) -> str:
    return f"arn:aws:rds:{region}:{ACCOUNT}:{rtype}:{name}"


def elasticache_targets(call: Call, inv: Inventory) -> list[Target]:
    params = {
        "ReplicationGroupId": ("replicationgroup", "CreateReplicationGroup"),
        "CacheSubnetGroupName": ("subnetgroup", "CreateCacheSubnetGroup"),
        "CacheClusterId": ("cluster", "CreateCacheCluster"),
        "CacheParameterGroupName": ("parametergroup", "CreateCacheParameterGroup"),
    }
    targets = []
    for param, (rtype, creator) in params.items():
        if value := call.params.get(param):
            arn = f"arn:aws:elasticache:{call.region}:{ACCOUNT}:{rtype}:{value}"
            targets.append(Target(arn, rtype, call.operation == creator))
    if name := call.params.get("ResourceName"):
        targets.append(Target(name, name.split(":")[5]))
    return targets


def s3_targets(call: Call, inv: Inventory) -> list[Target]:
    bucket, key = s3_bucket_and_key(call)
    if not bucket:
        return []
    if key:
        return [Target(f"arn:aws:s3:::{bucket}/{key}", "object")]
    return [Target(f"arn:aws:s3:::{bucket}", "bucket", call.operation == "CreateBucket")]


def secrets_targets(call: Call, inv: Inventory) -> list[Target]:
    secret = call.params.get("SecretId") or call.params.get("Name")
    if not secret:
        return []
    arn = (
        inv.secret_arn(secret) or f"arn:aws:secretsmanager:{call.region}:{ACCOUNT}:secret:{secret}"
    )
    return [Target(arn, "Secret", call.operation == "CreateSecret")]


def opensearch_targets(call: Call, inv: Inventory) -> list[Target]:
    if arn := call.params.get("ARN") or call.query.get("arn"):
        return [Target(arn, "domain")]
    name = call.params.get("DomainName")
    if not name:
        m = re.match(r"/2021-01-01/opensearch/domain/([^/]+)", call.path)
        name = m.group(1) if m else None
    if not name:
        return []
    arn = f"arn:aws:es:{call.region}:{ACCOUNT}:domain/{name}"
    return [Target(arn, "domain", call.operation == "CreateDomain")]


def dynamodb_targets(call: Call, inv: Inventory) -> list[Target]:
    table = call.params.get("TableName")
    arn = f"arn:aws:dynamodb:{call.region}:{ACCOUNT}:table/{table}"
    return [Target(arn, "table")] if table else []


def kms_targets(call: Call, inv: Inventory) -> list[Target]:
    key = call.params.get("KeyId")
    return [Target(f"arn:aws:kms:{call.region}:{ACCOUNT}:key/{key}", "key")] if key else []


TARGETS = {
    "ec2": ec2_targets,
    "iam": iam_targets,
    "rds": rds_targets,
    "elasticache": elasticache_targets,
    "s3": s3_targets,
    "secretsmanager": secrets_targets,
    "es": opensearch_targets,
    "dynamodb": dynamodb_targets,
    "kms": kms_targets,
}


# --- what AWS knows about the resources (a snapshot from the emulator) --------------------------


@dataclass
class Inventory:
    """Tags and relations of the deployment's resources, read from moto between the steps.

    ``tags`` maps ARN -> tags. ``associations`` maps route-table / EIP association ids to the
    resources they join. ``later_tagged`` (filled by ``note_tag_calls``) records, for
    resources a separate tagging call tagged, at which call which keys arrived: before it the
    resource did not carry them (AWS's own default security group, for instance).
    """

    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    associations: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    roles: dict[str, dict] = field(default_factory=dict)  # name -> {"path", "boundary"}
    profiles: dict[str, dict] = field(default_factory=dict)  # name -> {"path", "roles"}
    secrets: dict[str, str] = field(default_factory=dict)  # name or arn -> arn
    master_secrets: dict[str, str] = field(default_factory=dict)  # db/cluster arn -> secret arn
    later_tagged: dict[str, list[tuple[int, set[str]]]] = field(default_factory=dict)

    def merge(self, other: Inventory) -> None:
        for name in ("tags", "associations", "roles", "profiles", "secrets", "master_secrets"):
            getattr(self, name).update(getattr(other, name))

    def role_path(self, name: str) -> str:
        return self.roles.get(name, {}).get("path", "/")

    def profile_path(self, name: str) -> str:
        return self.profiles.get(name, {}).get("path", "/")

    def secret_arn(self, name_or_arn: str) -> str | None:
        return self.secrets.get(name_or_arn)

    def tags_at(self, arn: str, index: int) -> dict[str, str]:
        tags = dict(self.tags.get(arn, {}))
        for at, keys in self.later_tagged.get(arn, []):
            if index < at:
                for k in keys:
                    tags.pop(k, None)
        return tags

    def note_tag_calls(self, calls: Iterable[Call]) -> None:
        for call in calls:
            for arn, keys in tagging_call_effect(call, self):
                self.later_tagged.setdefault(arn, []).append((call.index, keys))


def tagging_call_effect(call: Call, inv: Inventory) -> list[tuple[str, set[str]]]:
    """(ARN, tag keys) a separate tagging call adds to existing resources."""
    if call.action == "ec2:CreateTags":
        keys = set(query_tags(call, "Tag"))
        return [(ec2_arn(call.region, ec2_type_of(r), r), keys) for r in call.indexed("ResourceId")]
    if call.action in ("iam:TagRole", "iam:TagInstanceProfile", "rds:AddTagsToResource"):
        keys = set(query_tags(call, "Tags.member") or query_tags(call, "Tags.Tag"))
        return [(t.arn, keys) for t in TARGETS[call.service](call, inv)]
    return []


# --- authorizations ----------------------------------------------------------------------------


class Definitions:
    """The Service Authorization Reference as parliament ships it (``iam_definition.json``)."""

    def __init__(self, data: list[dict]):
        self.privileges: dict[str, dict] = {}
        for service in data:
            for p in service["privileges"]:
                self.privileges[f"{service['prefix']}:{p['privilege']}".lower()] = p

    def privilege(self, action: str) -> dict | None:
        return self.privileges.get(action.lower())

    def resource_types(self, action: str) -> dict[str, bool]:
        """Resource type -> required, for ``action`` (empty: the action takes only ``*``)."""
        p = self.privilege(action)
        if p is None:
            raise Unmapped(f"{action} is not in the Service Authorization Reference")
        out = {}
        for rt in p["resource_types"]:
            name = rt["resource_type"]
            if name:
                out[name.rstrip("*")] = name.endswith("*")
        return out

    def access_level(self, action: str) -> str:
        p = self.privilege(action)
        if p is None:
            raise Unmapped(f"{action} is not in the Service Authorization Reference")
        return p["access_level"]


# Required resource types a call does not name, and why none is evaluated.
NOT_INVOLVED = {
    ("rds:DeleteDBCluster", "cluster-snapshot"): "SkipFinalSnapshot: no final snapshot is made",
    ("rds:DeleteDBInstance", "snapshot"): "SkipFinalSnapshot: no final snapshot is made",
}
# Required resource types a call uses without naming them: AWS picks its default.
DEFAULTS = {
    "cluster-pg": "default.aurora-postgresql16",
    "og": "default:aurora-postgresql-16",
    "pg": "default.postgres16",
    "parametergroup": "default.redis7",
}


def _tag_context(prefix: str, kind: str, tags: dict[str, str]) -> dict[str, str]:
    out = {}
    for k, v in tags.items():
        out[f"aws:{kind}/{k}"] = v
        out[f"{prefix}:{kind}/{k}"] = v
    return out


def _context(
    call: Call, target: Target, inv: Inventory, request_tags: dict[str, str] | None
) -> dict[str, str | list[str]]:
    ctx: dict[str, str | list[str]] = {"aws:PrincipalAccount": ACCOUNT}
    if not target.created:
        tags = inv.tags_at(target.arn, call.index)
        ctx.update(_tag_context(call.service, "ResourceTag", tags))
    if request_tags is not None:
        ctx.update(_tag_context(call.service, "RequestTag", request_tags))
        ctx["aws:TagKeys"] = sorted(request_tags)
    return ctx


def _request_tags(call: Call, target: Target) -> dict[str, str] | None:
    """The tags the request carries for ``target``: EC2 per resource type, else request-wide."""
    if call.service == "ec2":
        if target.created:
            return target.request_tags
        if call.operation in ("CreateTags", "DeleteTags"):
            return query_tags(call, "Tag")
        return None
    for prefix in ("Tags.member", "Tags.Tag", "Tags", "Tag"):
        if tags := query_tags(call, prefix):
            return tags
    if call.service == "iam" and call.operation.startswith("Untag"):
        return None
    if isinstance(call.params.get("Tags"), list):  # JSON protocols
        return {t["Key"]: t.get("Value", "") for t in call.params["Tags"]}
    if isinstance(call.params.get("TagList"), list):
        return {t["Key"]: t.get("Value", "") for t in call.params["TagList"]}
    if call.action == "s3:PutBucketTagging":
        root = ElementTree.fromstring(call.body)
        ns = {"s3": root.tag.split("}")[0].strip("{")} if root.tag.startswith("{") else {}
        key, value = ("s3:Key", "s3:Value") if ns else ("Key", "Value")
        tag = ".//s3:Tag" if ns else ".//Tag"
        return {t.findtext(key, "", ns): t.findtext(value, "", ns) for t in root.findall(tag, ns)}
    return None


def _tag_keys_of_untag(call: Call) -> list[str] | None:
    if call.action in ("iam:UntagRole", "iam:UntagInstanceProfile"):
        return call.indexed("TagKeys.member")
    if call.action == "rds:RemoveTagsFromResource":
        return call.indexed("TagKeys.member")
    if call.action == "ec2:DeleteTags":
        return list(query_tags(call, "Tag"))
    return None


def authorizations(call: Call, inv: Inventory, defs: Definitions) -> list[Request]:
    """Every IAM authorization AWS performs for ``call`` (primary action and dependents)."""
    types = defs.resource_types(call.action)
    targets = [t for t in TARGETS.get(call.service, lambda c, i: [])(call, inv) if t.rtype in types]
    named = {t.rtype for t in targets}
    for rtype, required in types.items():
        if not required or rtype in named or (call.action, rtype) in NOT_INVOLVED:
            continue
        if defs.access_level(call.action) in ("List", "Read"):
            targets.append(Target("*", rtype))  # a listing names no resource: all of them
            continue
        if rtype in DEFAULTS:
            arn = f"arn:aws:{call.service}:{call.region}:{ACCOUNT}:{rtype}:{DEFAULTS[rtype]}"
            targets.append(Target(arn, rtype))
            continue
        raise Unmapped(
            f"#{call.index} {call.action}: names no {rtype} resource (required); "
            "teach tests/iam/aws_calls.py which one it uses"
        )
    requests = []
    for target in targets or [Target("*", "")]:
        ctx = _context(call, target, inv, _request_tags(call, target))
        if (keys := _tag_keys_of_untag(call)) is not None:
            ctx["aws:TagKeys"] = keys
        ctx.update(_special_keys(call, target, inv))
        requests.append(Request(call.action, target.arn, ctx))
    requests += _dependents(call, targets, inv)
    return requests


def _special_keys(call: Call, target: Target, inv: Inventory) -> dict[str, str]:
    out: dict[str, str] = {}
    if call.service == "iam" and target.rtype == "role":
        role = call.params.get("RoleName", "")
        if call.operation == "CreateRole" or call.operation == "PutRolePermissionsBoundary":
            boundary = call.params.get("PermissionsBoundary")
        else:
            boundary = inv.roles.get(role, {}).get("boundary")
        if boundary:
            out["iam:PermissionsBoundary"] = boundary
        if service := call.params.get("AWSServiceName"):
            out["iam:AWSServiceName"] = service
    return out


def _dependents(call: Call, targets: list[Target], inv: Inventory) -> list[Request]:
    out: list[Request] = []

    def add(action: str, arn: str, ctx: dict) -> None:
        out.append(Request(action, arn, {"aws:PrincipalAccount": ACCOUNT, **ctx}))

    if call.service == "ec2" and call.operation in EC2_CREATES:
        for t in targets:
            if t.created and t.request_tags:
                ctx = _tag_context("ec2", "RequestTag", t.request_tags)
                add(
                    "ec2:CreateTags",
                    t.arn,
                    {
                        **ctx,
                        "aws:TagKeys": sorted(t.request_tags),
                        "ec2:CreateAction": call.operation,
                    },
                )
    passed = []
    if call.action == "ec2:RunInstances":
        profile = (
            call.params.get("IamInstanceProfile.Name")
            or call.params.get("IamInstanceProfile.Arn", "").rsplit("/", 1)[-1]
        )
        passed = inv.profiles.get(profile, {}).get("roles", []) if profile else []
    if call.action == "iam:AddRoleToInstanceProfile":
        passed = [call.params["RoleName"]]
    for role in passed:
        arn = f"arn:aws:iam::{ACCOUNT}:role{inv.role_path(role)}{role}"
        add("iam:PassRole", arn, {"iam:PassedToService": "ec2.amazonaws.com"})
    created = [t for t in targets if t.created]
    request_tags = _request_tags(call, created[0]) if created and call.service != "ec2" else None
    tag_action = {
        ("iam", "CreateRole"): "iam:TagRole",
        ("iam", "CreateInstanceProfile"): "iam:TagInstanceProfile",
        ("rds", "CreateDBCluster"): "rds:AddTagsToResource",
        ("rds", "CreateDBInstance"): "rds:AddTagsToResource",
        ("rds", "CreateDBInstanceReadReplica"): "rds:AddTagsToResource",
        ("rds", "CreateDBSubnetGroup"): "rds:AddTagsToResource",
        ("es", "CreateDomain"): "es:AddTags",
        ("elasticache", "CreateReplicationGroup"): "elasticache:AddTagsToResource",
        ("elasticache", "CreateCacheSubnetGroup"): "elasticache:AddTagsToResource",
    }.get((call.service, call.operation))
    if tag_action and request_tags:
        for t in created:
            ctx = _tag_context(call.service, "RequestTag", request_tags)
            add(tag_action, t.arn, {**ctx, "aws:TagKeys": sorted(request_tags)})
    if call.service == "rds" and call.params.get("ManageMasterUserPassword") == "true":
        for t in created:
            if t.rtype not in ("cluster", "db"):
                continue
            key = "primaryDBClusterArn" if t.rtype == "cluster" else "primaryDBInstanceArn"
            arn = _real_arn(call, t)
            secret = inv.master_secrets.get(arn)
            if secret is None:
                raise Unmapped(f"#{call.index} {call.action}: no managed secret known for {arn}")
            tags = {f"aws:rds:{key}": arn, "aws:secretsmanager:owningService": "rds"}
            ctx = {
                **_tag_context("secretsmanager", "RequestTag", tags),
                "aws:TagKeys": sorted(tags),
            }
            add("secretsmanager:CreateSecret", secret, ctx)
            add("secretsmanager:TagResource", secret, ctx)
            add(
                "kms:DescribeKey", f"arn:aws:kms:{call.region}:{ACCOUNT}:key/aws-secretsmanager", {}
            )
    return out


def _real_arn(call: Call, target: Target) -> str:
    """The ARN a created RDS resource got (its identifier is in the request)."""
    param = "DBClusterIdentifier" if target.rtype == "cluster" else "DBInstanceIdentifier"
    return rds_arn(call.region, target.rtype, call.params[param])
