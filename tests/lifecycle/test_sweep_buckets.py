"""The sweeper removes a deployment's file bucket even when it has no tags: an apply killed
between S3's CreateBucket and PutBucketTagging leaves one behind, and the resumed apply creates
another (Terraform's ``bucket_prefix``). Against moto's S3 on 127.0.0.1 (AWS itself emulated)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mmload.lifecycle.aws import Aws
from mmload.lifecycle.status import Tagged
from mmload.lifecycle.sweep import Sweeper
from tests.provision.conftest import MotoServer


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield server
    finally:
        server.stop()


def test_untagged_file_buckets_of_the_deployment_go_others_stay(moto, monkeypatch) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    aws = Aws("us-east-1", endpoint_url=moto.url)
    s3 = aws.client("s3")
    orphan = "mm-sw-files-20261202135421898000000001"  # killed before its tags
    tagged = "mm-sw-files-20261202135500000000000002"  # the resumed apply's, tagged
    others = ["mm-sw-2-files-20261202135421898000000003", "mm-sw-files-notes", "team-files-1"]
    for name in [orphan, tagged, *others]:
        s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=orphan, Key="data/x", Body=b"file")
    said: list[str] = []
    sweeper = Sweeper(aws, "mm-sw", said.append)
    sweeper.buckets([Tagged(f"arn:aws:s3:::{tagged}", {"mmload:deployment": "mm-sw"})])
    left = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
    assert left == sorted(others)
    assert any(orphan in line and "no tags" in line for line in said), said


def test_the_agents_own_interfaces_go_others_stay(moto, monkeypatch) -> None:
    """An agent's own interface (load.agent_private_ips) outlives its terminated instance,
    detached: the sweeper deletes the deployment's, never another's or one still in use."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    aws = Aws("us-east-1", endpoint_url=moto.url)
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.61.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.61.0.0/20")["Subnet"]["SubnetId"]

    def interface(deployment: str) -> str:
        tags = [{"Key": "mmload:deployment", "Value": deployment}]
        eni = ec2.create_network_interface(
            SubnetId=subnet,
            SecondaryPrivateIpAddressCount=2,
            TagSpecifications=[{"ResourceType": "network-interface", "Tags": tags}],
        )
        return eni["NetworkInterface"]["NetworkInterfaceId"]

    ours, theirs = interface("mm-sw"), interface("mm-other")
    said: list[str] = []
    Sweeper(aws, "mm-sw", said.append).interfaces()
    left = {n["NetworkInterfaceId"] for n in ec2.describe_network_interfaces()["NetworkInterfaces"]}
    assert ours not in left and theirs in left
    assert said == [f"deleting network interface {ours}"]
