"""The recording decoder on real SDK requests: boto3 against a recording moto server.

Each service protocol mmload's stack uses -- query (EC2, IAM, RDS, ElastiCache, STS), JSON with
X-Amz-Target (Secrets Manager, Resource Groups Tagging, DynamoDB, KMS), REST-XML (S3) and
REST-JSON (OpenSearch) -- is recorded by moto and must decode to the IAM action AWS authorizes.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.iam.aws_calls import Inventory, Unmapped, authorizations, decode, decode_recording
from tests.iam.conftest import definitions
from tests.provision.conftest import MotoServer


def recorder(moto: MotoServer, verb: str) -> str:
    request = urllib.request.Request(f"{moto.url}/moto-api/recorder/{verb}", method="POST")
    with urllib.request.urlopen(request, timeout=30) as r:
        return r.read().decode("utf-8")


def sdk_calls(moto: MotoServer) -> None:
    tags = [{"Key": "mmload:deployment", "Value": "mm-x"}]
    ec2 = moto.client("ec2")
    ec2.describe_vpcs()
    vpc = ec2.create_vpc(
        CidrBlock="10.9.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}]
    )["Vpc"]["VpcId"]
    ec2.delete_vpc(VpcId=vpc)
    moto.client("iam").create_role(
        RoleName="mm-x-app", Path="/mmload/", AssumeRolePolicyDocument="{}", Tags=tags
    )
    moto.client("sts").get_caller_identity()
    moto.client("rds").describe_db_clusters()
    moto.client("elasticache").describe_replication_groups()
    s3 = moto.client("s3")
    s3.create_bucket(Bucket="mm-x-files-1")
    s3.put_bucket_tagging(Bucket="mm-x-files-1", Tagging={"TagSet": tags})
    s3.head_bucket(Bucket="mm-x-files-1")
    s3.put_object(Bucket="mm-x-files-1", Key="a/b.txt", Body=b"x")
    s3.list_object_versions(Bucket="mm-x-files-1")
    s3.delete_object(Bucket="mm-x-files-1", Key="a/b.txt")
    with pytest.raises(ClientError):
        s3.get_bucket_policy(Bucket="mm-x-files-1")
    s3.delete_bucket(Bucket="mm-x-files-1")
    sm = moto.client("secretsmanager")
    arn = sm.create_secret(Name="rds!cluster-1", SecretString="{}")["ARN"]
    sm.get_secret_value(SecretId=arn)
    moto.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": "mmload:deployment", "Values": ["mm-x"]}]
    )
    es = moto.client("opensearch")
    domain = es.create_domain(DomainName="mm-x-es", TagList=tags)["DomainStatus"]["ARN"]
    es.list_tags(ARN=domain)
    es.delete_domain(DomainName="mm-x-es")
    ddb = moto.client("dynamodb")
    ddb.create_table(
        TableName="locks",
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="locks", Item={"LockID": {"S": "x"}})
    moto.client("kms").list_keys()


EXPECTED = [
    "ec2:DescribeVpcs",
    "ec2:CreateVpc",
    "ec2:DeleteVpc",
    "iam:CreateRole",
    "sts:GetCallerIdentity",
    "rds:DescribeDBClusters",
    "elasticache:DescribeReplicationGroups",
    "s3:CreateBucket",
    "s3:PutBucketTagging",
    "s3:ListBucket",
    "s3:PutObject",
    "s3:ListBucketVersions",
    "s3:DeleteObject",
    "s3:GetBucketPolicy",
    "s3:DeleteBucket",
    "secretsmanager:CreateSecret",
    "secretsmanager:GetSecretValue",
    "tag:GetResources",
    "es:CreateDomain",
    "es:ListTags",
    "es:DeleteDomain",
    "dynamodb:CreateTable",
    "dynamodb:PutItem",
    "kms:ListKeys",
]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("recorder")
    moto = MotoServer(tmp / "moto.log", {"MOTO_RECORDER_FILEPATH": str(tmp / "rec")})
    try:
        recorder(moto, "start-recording")
        sdk_calls(moto)
        recorder(moto, "stop-recording")
        return recorder(moto, "download-recording")
    finally:
        moto.stop()


def test_every_protocol_decodes_to_its_iam_action(recording: str) -> None:
    calls = decode_recording(recording)
    assert [c.action for c in calls] == EXPECTED
    assert {c.region for c in calls} == {"us-east-1"}


def test_authorizations_name_resources_tags_and_dependents(recording: str) -> None:
    calls = {c.action: c for c in decode_recording(recording)}
    inv, defs = Inventory(), definitions()
    create_vpc = authorizations(calls["ec2:CreateVpc"], inv, defs)
    assert [r.action for r in create_vpc] == ["ec2:CreateVpc", "ec2:CreateTags"]
    assert create_vpc[0].resource == "arn:aws:ec2:us-east-1:123456789012:vpc/new"
    assert create_vpc[0].key("aws:requesttag/mmload:deployment") == "mm-x"
    assert create_vpc[1].key("ec2:CreateAction") == "CreateVpc"
    role = authorizations(calls["iam:CreateRole"], inv, defs)
    assert role[0].resource == "arn:aws:iam::123456789012:role/mmload/mm-x-app"
    assert [r.action for r in role] == ["iam:CreateRole", "iam:TagRole"]
    obj = authorizations(calls["s3:PutObject"], inv, defs)
    assert [r.resource for r in obj] == ["arn:aws:s3:::mm-x-files-1/a/b.txt"]
    assert [r.resource for r in authorizations(calls["tag:GetResources"], inv, defs)] == ["*"]
    domain = authorizations(calls["es:CreateDomain"], inv, defs)
    assert [(r.action, r.resource) for r in domain] == [
        ("es:CreateDomain", "arn:aws:es:us-east-1:123456789012:domain/mm-x-es"),
        ("es:AddTags", "arn:aws:es:us-east-1:123456789012:domain/mm-x-es"),
    ]
    deleted = authorizations(calls["ec2:DeleteVpc"], inv, defs)
    inv.tags[deleted[0].resource] = {"mmload:deployment": "mm-x"}
    deleted = authorizations(calls["ec2:DeleteVpc"], inv, defs)
    assert deleted[0].key("aws:ResourceTag/mmload:deployment") == "mm-x"


def test_an_unknown_call_fails_loudly(tmp_path: Path) -> None:
    auth = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, Sig=x"
    entry = {"headers": {"Authorization": auth}, "method": "PUT", "url": "http://h/b?analytics"}
    with pytest.raises(Unmapped, match="analytics"):
        decode(0, {**entry, "body": ""})
    entry["headers"] = {}
    with pytest.raises(Unmapped, match="credential scope"):
        decode(0, {**entry, "body": ""})
    assert decode(0, {"headers": {}, "method": "POST", "url": "http://h/moto-api/x"}) is None
    json.dumps(entry)
