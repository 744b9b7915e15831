"""What the shipped IAM documents refuse, their shape, the templates that rely on them, and the
evaluator the coverage test uses (it must be able to say no)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmload.config.deployment import Deployment
from tests.iam.aws_calls import ACCOUNT
from tests.iam.conftest import definitions, load_policy
from tests.iam.policy_eval import Request, evaluate, evaluate_with_boundary, glob_match
from tests.provision.conftest import OPERATOR

R = "us-east-1"
OURS = {"aws:ResourceTag/mmload:deployment": "mm-x"}
NEW_OURS = {"aws:RequestTag/mmload:deployment": "mm-x", "aws:TagKeys": ["mmload:deployment"]}
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/mmload/mmload-boundary"
PRIMARY_CLUSTER = "aws:ResourceTag/aws:rds:primaryDBClusterArn"


def ec2(rtype: str, rid: str = "x-1") -> str:
    return f"arn:aws:ec2:{R}:{ACCOUNT}:{rtype}/{rid}"


def iam(kind: str, path: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:{kind}{path}"


MAIN_ALLOWS = [
    Request("ec2:RunInstances", ec2("instance", "new"), NEW_OURS),
    Request("ec2:RunInstances", ec2("subnet", "subnet-customer")),  # an existing VPC's subnet
    Request("ec2:RunInstances", ec2("security-group"), OURS),
    Request("ec2:CreateSecurityGroup", ec2("vpc", "vpc-customer")),  # existing VPC
    Request("ec2:DeleteVpc", ec2("vpc"), OURS),
    # an agent's own interface with several private IPs, and its Elastic IP
    Request("ec2:CreateNetworkInterface", ec2("network-interface", "new"), NEW_OURS),
    Request("ec2:CreateNetworkInterface", ec2("subnet", "subnet-customer")),
    Request("ec2:AssociateAddress", ec2("network-interface"), OURS),
    Request("ec2:AssociateAddress", ec2("elastic-ip"), OURS),
    Request("ec2:DeleteNetworkInterface", ec2("network-interface"), OURS),
    Request(
        "ec2:CreateTags",
        ec2("security-group"),
        {**NEW_OURS, "ec2:CreateAction": "CreateSecurityGroup"},
    ),
    Request("ec2:CreateTags", ec2("instance"), {**OURS, "aws:TagKeys": ["mmload:expires-at"]}),
    Request(
        "iam:CreateRole",
        iam("role", "/mmload/mm-x-app"),
        {**NEW_OURS, "iam:PermissionsBoundary": BOUNDARY},
    ),
    Request(
        "iam:PutRolePolicy", iam("role", "/mmload/mm-x-app"), {"iam:PermissionsBoundary": BOUNDARY}
    ),
    Request(
        "iam:PassRole",
        iam("role", "/mmload/mm-x-node"),
        {"iam:PassedToService": "ec2.amazonaws.com"},
    ),
    Request("rds:DeleteDBCluster", f"arn:aws:rds:{R}:{ACCOUNT}:cluster:mm-x-db", OURS),
    Request("s3:DeleteBucket", "arn:aws:s3:::mm-x-files-2026"),
    Request(
        "secretsmanager:GetSecretValue",
        f"arn:aws:secretsmanager:{R}:{ACCOUNT}:secret:rds!cluster-1-AbCd",
        {
            "aws:ResourceTag/aws:secretsmanager:owningService": "rds",
            PRIMARY_CLUSTER: f"arn:aws:rds:{R}:{ACCOUNT}:cluster:mm-x-db",
        },
    ),
    Request("tag:GetResources", "*"),
]
MAIN_DENIES = [
    (
        "run an instance without the deployment tag",
        Request("ec2:RunInstances", ec2("instance", "new"), {}),
    ),
    (
        "launch into someone else's security group",
        Request("ec2:RunInstances", ec2("security-group")),
    ),
    ("delete a VPC mmload did not tag", Request("ec2:DeleteVpc", ec2("vpc"))),
    (
        "create an interface without the tag",
        Request("ec2:CreateNetworkInterface", ec2("network-interface", "new"), {}),
    ),
    (
        "move an Elastic IP onto an interface mmload did not tag",
        Request("ec2:AssociateAddress", ec2("network-interface")),
    ),
    (
        "delete an interface mmload did not tag",
        Request("ec2:DeleteNetworkInterface", ec2("network-interface")),
    ),
    ("terminate someone else's instance", Request("ec2:TerminateInstances", ec2("instance"))),
    (
        "open someone else's security group",
        Request("ec2:AuthorizeSecurityGroupIngress", ec2("security-group")),
    ),
    (
        "claim an untagged resource by tagging it",
        Request("ec2:CreateTags", ec2("security-group"), NEW_OURS),
    ),
    (
        "drop the deployment tag",
        Request("ec2:DeleteTags", ec2("instance"), {**OURS, "aws:TagKeys": ["mmload:deployment"]}),
    ),
    (
        "a role outside /mmload/",
        Request(
            "iam:CreateRole",
            iam("role", "/x-app"),
            {**NEW_OURS, "iam:PermissionsBoundary": BOUNDARY},
        ),
    ),
    (
        "a role without the boundary",
        Request("iam:CreateRole", iam("role", "/mmload/mm-x-app"), NEW_OURS),
    ),
    (
        "a role with another boundary",
        Request(
            "iam:CreateRole",
            iam("role", "/mmload/mm-x-app"),
            {**NEW_OURS, "iam:PermissionsBoundary": f"arn:aws:iam::{ACCOUNT}:policy/admin"},
        ),
    ),
    (
        "a policy on a role without the boundary",
        Request("iam:PutRolePolicy", iam("role", "/mmload/mm-x-app")),
    ),
    (
        "remove a boundary",
        Request("iam:DeleteRolePermissionsBoundary", iam("role", "/mmload/mm-x-app")),
    ),
    (
        "attach a managed policy",
        Request(
            "iam:AttachRolePolicy",
            iam("role", "/mmload/mm-x-app"),
            {"iam:PermissionsBoundary": BOUNDARY},
        ),
    ),
    ("edit the boundary itself", Request("iam:CreatePolicyVersion", BOUNDARY)),
    (
        "rewrite a role's trust",
        Request("iam:UpdateAssumeRolePolicy", iam("role", "/mmload/mm-x-app")),
    ),
    (
        "pass an mmload role to Lambda",
        Request(
            "iam:PassRole",
            iam("role", "/mmload/mm-x-app"),
            {"iam:PassedToService": "lambda.amazonaws.com"},
        ),
    ),
    (
        "pass another role to EC2",
        Request(
            "iam:PassRole", iam("role", "/admin"), {"iam:PassedToService": "ec2.amazonaws.com"}
        ),
    ),
    ("assume a role", Request("sts:AssumeRole", iam("role", "/mmload/mm-x-app"))),
    (
        "modify a database mmload did not tag",
        Request("rds:ModifyDBCluster", f"arn:aws:rds:{R}:{ACCOUNT}:cluster:prod"),
    ),
    (
        "delete a database mmload did not tag",
        Request("rds:DeleteDBInstance", f"arn:aws:rds:{R}:{ACCOUNT}:db:prod"),
    ),
    (
        "tag a database into the deployment",
        Request("rds:AddTagsToResource", f"arn:aws:rds:{R}:{ACCOUNT}:db:prod", NEW_OURS),
    ),
    (
        "create a database without the tag",
        Request("rds:CreateDBCluster", f"arn:aws:rds:{R}:{ACCOUNT}:cluster:x-db"),
    ),
    (
        "read any secret",
        Request(
            "secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:{R}:{ACCOUNT}:secret:prod-db"
        ),
    ),
    (
        "read another database's managed secret",
        Request(
            "secretsmanager:GetSecretValue",
            f"arn:aws:secretsmanager:{R}:{ACCOUNT}:secret:rds!cluster-9",
            {
                "aws:ResourceTag/aws:secretsmanager:owningService": "rds",
                PRIMARY_CLUSTER: f"arn:aws:rds:{R}:{ACCOUNT}:cluster:prod",
            },
        ),
    ),
    (
        "delete a secret",
        Request(
            "secretsmanager:DeleteSecret",
            f"arn:aws:secretsmanager:{R}:{ACCOUNT}:secret:rds!cluster-1",
        ),
    ),
    ("a bucket policy", Request("s3:PutBucketPolicy", "arn:aws:s3:::mm-x-files-1")),
    ("a bucket ACL", Request("s3:PutBucketAcl", "arn:aws:s3:::mm-x-files-1")),
    ("delete another bucket", Request("s3:DeleteBucket", "arn:aws:s3:::customer-data")),
    (
        "read the files bucket's objects",
        Request("s3:GetObject", "arn:aws:s3:::mm-x-files-1/secret.txt"),
    ),
    (
        "delete a search domain mmload did not tag",
        Request("es:DeleteDomain", f"arn:aws:es:{R}:{ACCOUNT}:domain/prod"),
    ),
    (
        "delete a cache mmload did not tag",
        Request(
            "elasticache:DeleteReplicationGroup",
            f"arn:aws:elasticache:{R}:{ACCOUNT}:replicationgroup:prod",
        ),
    ),
    ("grant on a KMS key", Request("kms:CreateGrant", f"arn:aws:kms:{R}:{ACCOUNT}:key/1")),
]


@pytest.mark.parametrize(
    "request_", MAIN_ALLOWS, ids=lambda r: f"{r.action}-{r.resource.rsplit(':', 1)[-1]}"
)
def test_the_policy_allows_what_mmload_does(request_: Request) -> None:
    decision = evaluate([load_policy("main")], request_)
    assert decision.allowed, decision


@pytest.mark.parametrize(("what", "request_"), MAIN_DENIES, ids=[w for w, _ in MAIN_DENIES])
def test_the_policy_refuses(what: str, request_: Request) -> None:
    decision = evaluate([load_policy("main")], request_)
    assert not decision.allowed, (what, decision)


def _actions(policy: dict, effect: str = "Allow") -> list[tuple[str, dict]]:
    out = []
    for st in policy["Statement"]:
        if st["Effect"] == effect:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            out += [(a, st) for a in actions]
    return out


@pytest.mark.parametrize("name", ["main", "readonly", "boundary"])
def test_actions_are_named_not_wildcards(name: str) -> None:
    for action, _ in _actions(load_policy(name)) + _actions(load_policy(name), "Deny"):
        assert "*" not in action and "?" not in action, action
        definitions().access_level(action)  # a real action of the Service Authorization Reference


def test_the_read_only_variant_reads_only() -> None:
    defs = definitions()
    writes = [
        a
        for a, _ in _actions(load_policy("readonly"))
        if defs.access_level(a) not in ("List", "Read")
    ]
    assert not writes


def test_nothing_that_changes_aws_is_allowed_on_every_resource() -> None:
    """Resource "*" only for reads (and for nothing, the Service Authorization Reference says,
    can be scoped): every write, tagging or permissions action names its resources."""
    defs = definitions()
    for action, st in _actions(load_policy("main")):
        if "*" in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]):
            assert defs.access_level(action) in ("List", "Read"), (action, st["Sid"])


def test_the_templates_create_the_roles_the_policy_allows(tmp_path: Path) -> None:
    from mmload.provision.render import render

    dep = Deployment.model_validate({"name": "mm-x", "tier": 2000, "operator_cidrs": [OPERATOR]})
    base = (render(dep, tmp_path / "w").workdir / "base.tf").read_text()
    roles = re.findall(r'resource "aws_iam_role" "(\w+)" \{(.*?)\n\}', base, re.S)
    profiles = re.findall(r'resource "aws_iam_instance_profile" "(\w+)" \{(.*?)\n\}', base, re.S)
    assert {r for r, _ in roles} == {"app", "node"} and {p for p, _ in profiles} == {"app", "node"}
    for _, body in roles + profiles:
        assert re.search(r"path\s+= local.iam_path", body), body
    for _, body in roles:
        assert re.search(r"permissions_boundary\s+= local.iam_boundary_arn", body), body
    assert 'iam_path         = "/mmload/"' in base
    boundary = re.search(r'iam_boundary_arn = "arn:aws:iam::\$\{[^}]+\}:(policy/[^"]+)"', base)
    assert boundary and glob_match(BOUNDARY.split(":")[-1], boundary.group(1))
    pass_role = next(st for a, st in _actions(load_policy("main")) if a == "iam:PassRole")
    for role in ("mm-x-app", "mm-x-node"):
        assert any(glob_match(p, iam("role", f"/mmload/{role}")) for p in pass_role["Resource"])


def test_the_boundary_keeps_a_role_to_its_own_deployments_files() -> None:
    boundary = load_policy("boundary")
    everything = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    me = {"aws:PrincipalTag/mmload:deployment": "mm-x"}
    assert evaluate_with_boundary(
        [everything], boundary, Request("s3:GetObject", "arn:aws:s3:::mm-x-files-1/a", me)
    ).allowed
    for request in (
        Request("s3:GetObject", "arn:aws:s3:::mm-y-files-1/a", me),
        Request("s3:GetObject", "arn:aws:s3:::mm-x-files-1/a", {}),  # an untagged role
        Request("s3:PutBucketPolicy", "arn:aws:s3:::mm-x-files-1", me),
        Request("iam:PassRole", iam("role", "/mmload/mm-x-app"), me),
        Request("ec2:RunInstances", ec2("instance"), me),
    ):
        assert not evaluate_with_boundary([everything], boundary, request).allowed, request


# --- the evaluator itself -----------------------------------------------------------------------


def _policy(*statements: dict) -> list[dict]:
    return [{"Version": "2012-10-17", "Statement": list(statements)}]


def test_evaluator_wildcards_and_not_elements() -> None:
    p = _policy({"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"})
    assert evaluate(p, Request("EC2:describeVpcs", "*")).allowed  # actions: case-insensitive
    assert not evaluate(p, Request("ec2:DeleteVpc", "*")).allowed
    p = _policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b-?"})
    assert evaluate(p, Request("s3:GetObject", "arn:aws:s3:::b-1")).allowed
    assert not evaluate(p, Request("s3:GetObject", "arn:aws:s3:::b-12")).allowed
    assert not evaluate(p, Request("s3:GetObject", "arn:aws:s3:::B-1")).allowed  # ARNs: exact case
    assert not evaluate(p, Request("iam:GetRole", "arn:aws:s3:::b-1")).allowed
    p = _policy(
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::${aws:PrincipalTag/t}-*"},
    )
    assert evaluate(
        p, Request("s3:GetObject", "arn:aws:s3:::me-1", {"aws:PrincipalTag/t": "me"})
    ).allowed
    assert not evaluate(
        p, Request("s3:GetObject", "arn:aws:s3:::you-1", {"aws:PrincipalTag/t": "me"})
    ).allowed
    assert not evaluate(
        p, Request("s3:GetObject", "arn:aws:s3:::me-1")
    ).allowed  # no tag: fail closed


def test_evaluator_conditions() -> None:
    def allowed(cond: dict, ctx: dict) -> bool:
        return evaluate(
            _policy({"Effect": "Allow", "Action": "a:B", "Resource": "*", "Condition": cond}),
            Request("a:B", "*", ctx),
        ).allowed

    assert allowed({"Null": {"k": "false"}}, {"K": "v"}) and not allowed(
        {"Null": {"k": "false"}}, {}
    )
    assert allowed({"Null": {"k": "true"}}, {}) and not allowed({"Null": {"k": "true"}}, {"k": ""})
    assert allowed({"StringEquals": {"k": ["x", "v"]}}, {"k": "v"}) and not allowed(
        {"StringEquals": {"k": "x"}}, {"k": "v"}
    )
    assert not allowed({"StringEquals": {"k": "v"}}, {})
    assert allowed({"StringEqualsIfExists": {"k": "v"}}, {})
    assert allowed({"StringNotEquals": {"k": "v"}}, {})  # negated: true when missing
    assert allowed({"StringLike": {"k": "a*"}}, {"k": "abc"}) and not allowed(
        {"StringLike": {"k": "a*"}}, {"k": "bc"}
    )
    assert allowed({"ArnLike": {"k": "arn:aws:iam::*:policy/p"}}, {"k": "arn:aws:iam::1:policy/p"})
    assert allowed({"ForAllValues:StringNotEquals": {"t": ["a"]}}, {"t": ["b", "c"]})
    assert not allowed({"ForAllValues:StringNotEquals": {"t": ["a"]}}, {"t": ["b", "a"]})
    assert allowed({"ForAnyValue:StringEquals": {"t": ["a"]}}, {"t": ["b", "a"]})
    assert not allowed({"ForAnyValue:StringEquals": {"t": ["a"]}}, {})
    assert not allowed({"StringEquals": {"k": "v"}, "Null": {"j": "false"}}, {"k": "v"})  # AND
    assert allowed(
        {"StringEquals": {"k": "${aws:PrincipalAccount}"}}, {"k": "1", "aws:PrincipalAccount": "1"}
    )
    with pytest.raises(ValueError):
        allowed({"NumericLessThan": {"k": "1"}}, {"k": "0"})
    with pytest.raises(ValueError):
        allowed({"StringEquals": {"t": "a"}}, {"t": ["a"]})  # multi-valued needs a set operator
