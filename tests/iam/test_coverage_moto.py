"""IAM coverage, proven: every AWS call mmload makes is allowed by the policy it ships.

moto does not enforce IAM, so this test does. A deployment is applied and destroyed with the
real terraform CLI and hashicorp/aws provider, state in the S3 backend with a DynamoDB lock,
against moto on 127.0.0.1 with moto's request
recorder on (``/moto-api/recorder/start-recording`` … ``download-recording``; the recorder is
started per step rather than with ``MOTO_ENABLE_RECORDING`` so that the test's own setup and
inspection calls are not recorded). Between apply and destroy, configure's secret read
(``read_db_password``) and a sweeper's ``tag:GetResources`` run against the same emulator.
Each recorded request is decoded into the IAM authorizations AWS would make for it
(``tests/iam/aws_calls.py``: service from the SigV4 credential scope, action from ``Action=``,
``X-Amz-Target`` or the REST route; resources and condition keys from the request and from the
tags the resources carried, read from moto between the steps) and evaluated by
``tests/iam/policy_eval.py`` against ``mmload/catalog/iam-policy.json`` (and, for read-only
steps, ``iam-policy-readonly.json``). A call the policy does not allow fails the test, naming
the step, the action, the resource and the statement that denied it.

The apply step is ``mmload up --only preflight,provision`` (preflight's STS, EC2 and Service
Quotas reads included; moto lacks EC2's quotas, tests/lifecycle/moto_quotas.py adds them),
``status`` and ``sweep``'s listing run read-only, and the destroy step is ``mmload down``.

Adding a step:
append a ``Step`` to ``STEPS`` -- a name, a function ``run(flow)`` that makes the calls (run
the CLI with ``flow.cli(...)``, the deployment.yaml is ``flow.config``), and the policies that
must allow every call it makes: ``("main",)`` for anything that changes AWS,
``("main", "readonly")`` for ``status`` and ``sweep --dry-run``. A step that destroys must come
after the others and before none that needs the resources; ``mmload down`` replaces the
``destroy`` step (keep its position). Nothing else changes: new AWS calls are decoded and
evaluated automatically, and one this module cannot decode fails with what to add.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.iam.aws_calls import Call, Inventory, Unmapped, authorizations, decode_recording
from tests.iam.conftest import BEFORE_ISSUE_10, definitions, load_policy
from tests.iam.inventory import snapshot
from tests.iam.policy_eval import Decision, Request, evaluate, evaluate_with_boundary
from tests.lifecycle.moto_quotas import QUOTAS_ENV
from tests.lifecycle.moto_quotas import command as moto_with_quotas
from tests.provision.conftest import (
    MOTO_UBUNTU_AMI,
    MotoServer,
    cli,
    require_tools,
    tf_env,
    write_deployment,
)

# One apply and destroy (about 5 minutes on a quiet machine) shared by the module's tests.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

NAME = "mm-iam"
# The S3 state backend (created by the admin, docs/aws.md), so that its calls are covered too.
STATE_BUCKET, LOCK_TABLE = "mmload-state-ci", "mmload-locks-ci"


def main_policy() -> dict:
    return load_policy("main", STATE_BUCKET, LOCK_TABLE)


def readonly_policy() -> dict:
    return load_policy("readonly", STATE_BUCKET, LOCK_TABLE)


@dataclass
class Flow:
    """One deployment against one recording emulator, shared by the steps."""

    tmp: Path
    moto: MotoServer
    env: dict[str, str]
    config: Path
    inventory: Inventory = field(default_factory=Inventory)

    @property
    def workdir(self) -> Path:
        return self.tmp / ".deployments" / NAME

    def cli(self, *args: str) -> str:
        done = cli(*args, cwd=self.tmp, env=self.env)
        assert done.returncode == 0, f"mmload {' '.join(args)}:\n{done.stdout[-3000:]}{done.stderr}"
        return done.stdout

    def outputs(self) -> dict:
        return json.loads((self.workdir / "outputs.json").read_text())

    def recorder(self, verb: str) -> str:
        url = f"{self.moto.url}/moto-api/recorder/{verb}"
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30) as r:
            return r.read().decode("utf-8")


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Flow], None]
    policies: tuple[str, ...] = ("main",)


def apply(flow: Flow) -> None:
    """`mmload up` as far as moto allows: preflight's reads, then plan and apply."""
    flow.cli("up", "-c", str(flow.config), "--only", "preflight,provision", "--yes")


def status(flow: Flow) -> None:
    out = flow.cli("status", "-c", str(flow.config))
    assert f"{NAME}: " in out and "tagged resources" in out, out


def sweep_listing(flow: Flow) -> None:
    out = flow.cli("sweep", "--endpoint-url", flow.moto.url)
    assert "no expired deployment" in out, out  # found by tag, not expired: nothing to do


def read_database_secret(flow: Flow) -> None:
    from mmload.configure.secrets import read_db_password

    database = flow.outputs()["database"]
    password = read_db_password(
        database["master_secret_arn"], region="us-east-1", endpoint_url=flow.moto.url
    )
    assert password  # moto's RDS-managed secret


def sweep_by_tag(flow: Flow) -> None:
    """What ``mmload down`` verifies and ``mmload sweep`` lists: resources by deployment tag."""
    tagging = flow.moto.client("resourcegroupstaggingapi")
    found = tagging.get_resources(TagFilters=[{"Key": "mmload:deployment", "Values": [NAME]}])
    assert found["ResourceTagMappingList"], "the tagging API found nothing of the deployment"


def destroy(flow: Flow) -> None:
    """`mmload down`: terraform destroy, then the tagging API must list nothing."""
    out = flow.cli("down", "-c", str(flow.config), "--yes")
    assert f"nothing tagged mmload:deployment={NAME} is left" in out, out


STEPS = [
    Step("apply", apply),
    Step("configure: read the database secret", read_database_secret),
    Step("sweep: find resources by tag", sweep_by_tag, ("main", "readonly")),
    Step("status", status, ("main", "readonly")),
    Step("sweep: list expired deployments", sweep_listing, ("main", "readonly")),
    Step("destroy", destroy),
]


@dataclass
class Evaluated:
    step: Step
    call: Call
    request: Request


def run_steps(flow: Flow) -> list[tuple[Step, str]]:
    """Run every step with the recorder on: (step, its recording), and the inventory."""
    out = []
    for step in STEPS:
        flow.recorder("reset-recording")
        flow.recorder("start-recording")
        try:
            step.run(flow)
        finally:
            flow.recorder("stop-recording")
        out.append((step, flow.recorder("download-recording")))
        if step.name == "apply":
            flow.inventory = snapshot(flow.moto.client)
    return out


def evaluate_steps(
    recordings: list[tuple[Step, str]], inventory: Inventory
) -> tuple[list[Evaluated], list[str]]:
    """Each recorded call decoded into its authorizations; what could not be decoded."""
    defs = definitions()
    out: list[Evaluated] = []
    problems: list[str] = []
    for step, text in recordings:
        calls = decode_recording(text)
        if not calls:
            problems.append(f"{step.name}: no AWS call recorded")
        inventory.note_tag_calls(calls)
        for call in calls:
            try:
                requests = authorizations(call, inventory, defs)
            except Unmapped as exc:
                problems.append(f"{step.name}: {exc}")
                continue
            out += [Evaluated(step, call, r) for r in requests]
    return out, problems


def describe(e: Evaluated, reason: str) -> str:
    tags = {k: v for k, v in e.request.context.items() if "Tag" in k and "mmload" in str(k)}
    return (
        f"{e.step.name} #{e.call.index} {e.call.operation} -> {e.request.action} on "
        f"{e.request.resource}: {reason} {tags}"
    )


def denials(
    evaluated: list[Evaluated], policy: dict, only=lambda e: True
) -> list[tuple[Evaluated, Decision]]:
    """The evaluated calls (those ``only`` selects) that ``policy`` refuses, with its decision."""
    out = []
    for e in evaluated:
        if only(e) and not (decision := evaluate([policy], e.request)).allowed:
            out.append((e, decision))
    return out


def denied(evaluated: list[Evaluated], policy: dict, only=lambda e: True) -> list[str]:
    return [describe(e, f"{d.reason} {d.statements}") for e, d in denials(evaluated, policy, only)]


def coverage_denials(
    evaluated: list[Evaluated], main: dict, readonly: dict
) -> list[tuple[Evaluated, Decision]]:
    """The coverage check: every call against the operator policy, and the read-only steps'
    calls against the read-only policy too; what either refuses."""
    return denials(evaluated, main) + denials(
        evaluated, readonly, lambda e: "readonly" in e.step.policies
    )


def without_deployment_tag(request: Request) -> Request:
    """``request`` as if neither the request nor the resource carried ``mmload:deployment``."""
    context = {
        k: v
        for k, v in request.context.items()
        if "mmload:deployment" not in k and k != "aws:TagKeys"
    }
    return Request(request.action, request.resource, context)


def without_action(policy: dict, action: str) -> dict:
    """``policy`` with ``action`` taken out of every Allow statement."""
    copy = json.loads(json.dumps(policy))
    for st in copy["Statement"]:
        if st["Effect"] == "Allow":
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            st["Action"] = [a for a in actions if a.lower() != action.lower()] or ["none:None"]
    return copy


def save_recordings(folder: Path, recordings: list[tuple[Step, str]], inv: Inventory) -> None:
    import pickle

    folder.mkdir(parents=True, exist_ok=True)
    data = {"recordings": [(s.name, text) for s, text in recordings], "inventory": inv}
    (folder / "recordings.pickle").write_bytes(pickle.dumps(data))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory):
    """One apply/destroy for all the tests of this module."""
    require_tools()
    tmp_path = tmp_path_factory.mktemp("iam-coverage")
    quotas = tmp_path / "quotas.json"  # moto lacks EC2's quotas: tests/lifecycle/moto_quotas.py
    quotas.write_text(json.dumps({"L-1216C47A": 640}))
    moto = MotoServer(
        tmp_path / "moto.log",
        {
            "MOTO_RECORDER_FILEPATH": str(tmp_path / "rec"),
            QUOTAS_ENV: str(quotas),
            "PYTHONPATH": str(REPO),
        },
        moto_with_quotas(),
    )
    saved = dict(os.environ)
    try:
        env = tf_env(tmp_path)
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            os.environ[key] = env[key]  # the in-process steps (configure's secret read)
        os.environ.pop("MMLOAD_DB_PASSWORD", None)
        # What the account's admin does once (docs/aws.md): create the permissions boundary.
        moto.client("iam").create_policy(
            PolicyName="mmload-boundary",
            Path="/mmload/",
            PolicyDocument=json.dumps(load_policy("boundary")),
        )
        # ... and the state bucket and lock table, for the S3 backend.
        moto.client("s3").create_bucket(Bucket=STATE_BUCKET)
        moto.client("dynamodb").create_table(
            TableName=LOCK_TABLE,
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        config = write_deployment(
            tmp_path / "deployment.yaml",
            name=NAME,
            tier=200,
            ami_id=MOTO_UBUNTU_AMI,
            owner="ci",
            components={"search": False, "detailed_monitoring": False},
            aws={"endpoint_url": moto.url},
            terraform={"backend": "s3", "state_bucket": STATE_BUCKET, "lock_table": LOCK_TABLE},
            mattermost={"sha256": "ab" * 32, "unlicensed": True},  # preflight's checksum check
        )
        flow = Flow(tmp_path, moto, env, config)
        recordings = run_steps(flow)
        keep = os.environ.get("MMLOAD_IAM_RECORDING_DIR")  # for working on the decoder offline
        if keep:
            save_recordings(Path(keep), recordings, flow.inventory)
        evaluated, problems = evaluate_steps(recordings, flow.inventory)
        yield evaluated, problems, flow
    finally:
        moto.stop()
        os.environ.clear()
        os.environ.update(saved)


def test_every_recorded_call_is_allowed_and_caught_without_its_action(recorded) -> None:
    evaluated, problems, _flow = recorded
    assert not problems, "\n".join(problems)
    actions = {e.request.action for e in evaluated}
    for needed in (
        "ec2:RunInstances",
        "ec2:CreateTags",
        "iam:CreateRole",
        "iam:PassRole",
        "rds:CreateDBCluster",
        "secretsmanager:CreateSecret",
        "secretsmanager:GetSecretValue",
        "tag:GetResources",
        "s3:CreateBucket",
        "ec2:TerminateInstances",
        "rds:DeleteDBCluster",
        "iam:DeleteRole",
        "s3:PutObject",  # the state
        "dynamodb:PutItem",  # its lock
    ):
        assert needed in actions, f"{needed} was never exercised: the flow is not what it claims"

    main, readonly = main_policy(), readonly_policy()
    failures = [
        describe(e, f"{d.reason} {d.statements}")
        for e, d in coverage_denials(evaluated, main, readonly)
    ]
    assert not failures, f"{len(failures)} denied:\n" + "\n".join(failures[:60])

    # The tag conditions decide: the same calls without the mmload:deployment tag (in the
    # request, or on the resource) are refused.
    untagged = {
        e.request.action
        for e in evaluated
        if not evaluate([main], without_deployment_tag(e.request)).allowed
    }
    for action in (
        "ec2:RunInstances",
        "ec2:TerminateInstances",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:DeleteVpc",
        "iam:CreateRole",
        "rds:CreateDBCluster",
        "rds:DeleteDBCluster",
    ):
        assert action in untagged, f"{action} is allowed without the deployment tag"

    # A new AWS call without a policy change fails: take any exercised action out of the
    # policy and the same recording is denied.
    uncaught = [
        a
        for a in sorted(actions)
        if not denied(evaluated, without_action(main, a), lambda e, a=a: e.request.action == a)
    ]
    assert not uncaught, f"removing these from the policy goes unnoticed: {uncaught}"


def test_the_read_only_variant_allows_no_change(recorded) -> None:
    evaluated, problems, _ = recorded
    assert not problems, "\n".join(problems)
    defs, readonly = definitions(), readonly_policy()
    writes = [e for e in evaluated if defs.access_level(e.request.action) not in ("List", "Read")]
    assert len({e.request.action for e in writes}) > 40
    allowed = [describe(e, "allowed") for e in writes if evaluate([readonly], e.request).allowed]
    assert not allowed, "\n".join(allowed)


def test_the_policy_before_issue_10_misses_the_secret_read_and_the_sweep(recorded) -> None:
    """The evaluation catches what the 0.1.0 policy lacked (issue 12 item 3)."""
    evaluated, problems, _ = recorded
    assert not problems, "\n".join(problems)
    old = json.loads(BEFORE_ISSUE_10.read_text())
    missing = {
        e.request.action
        for e in evaluated
        if e.step.name != "apply" and e.step.name != "destroy"
        if not evaluate([old], e.request).allowed
    }
    assert missing == {"secretsmanager:GetSecretValue", "tag:GetResources"}, missing


ISSUE_12_MISSING = ("secretsmanager:GetSecretValue", "tag:GetResources")


def test_the_coverage_check_fails_naming_exactly_the_two_actions_issue_12_found(
    recorded,
) -> None:
    """Done-when of issue 12: the shipped policy with the two actions the review found missing
    taken out again fails the same check as the shipped one passes, over the same recording
    (every step, both policies), naming those two actions and nothing else; and the calls that
    need them are mmload's own: configure's secret read and the sweeper's listing."""
    evaluated, problems, _ = recorded
    assert not problems, "\n".join(problems)
    from mmload.configure import run as configure_run
    from mmload.configure.secrets import read_db_password

    # The step calls the function `mmload configure` reads the password with.
    assert configure_run.read_db_password is read_db_password
    main, readonly = main_policy(), readonly_policy()
    assert not coverage_denials(evaluated, main, readonly)
    for action in ISSUE_12_MISSING:
        main = without_action(main, action)
    refused = coverage_denials(evaluated, main, readonly)
    refused_actions = ISSUE_12_MISSING
    assert {e.request.action for e, _ in refused} == set(ISSUE_12_MISSING), [
        describe(e, d.reason) for e, d in refused
    ]
    steps = {a: {e.step.name for e, _ in refused if e.request.action == a} for a in refused_actions}
    assert steps["secretsmanager:GetSecretValue"] == {"configure: read the database secret"}
    # `mmload sweep` (its listing), `mmload status` and `mmload down`'s check, not only the
    # test's own tagging call.
    assert {"sweep: list expired deployments", "status", "destroy"} <= steps["tag:GetResources"]
    # The secret refused is the deployment's RDS-managed one.
    secret = {e.request.resource for e, _ in refused if e.request.action == ISSUE_12_MISSING[0]}
    assert len(secret) == 1 and ":secret:rds!" in secret.pop(), secret


def test_the_app_role_reaches_only_its_own_bucket_through_the_boundary(recorded) -> None:
    """The role policy Terraform wrote, under the shipped boundary, as the app node sees it."""
    evaluated, problems, _flow = recorded
    assert not problems, "\n".join(problems)
    put = next(e.call for e in evaluated if e.request.action == "iam:PutRolePolicy")
    role_policy = json.loads(put.params["PolicyDocument"])
    boundary = load_policy("boundary")
    bucket = next(e.call for e in evaluated if e.request.action == "s3:CreateBucket").path
    bucket = bucket.strip("/")
    as_app = {"aws:PrincipalTag/mmload:deployment": NAME}
    own = Request("s3:PutObject", f"arn:aws:s3:::{bucket}/data/x", as_app)
    other = Request("s3:PutObject", "arn:aws:s3:::other-files-1/data/x", as_app)
    assert evaluate_with_boundary([role_policy], boundary, own).allowed
    assert not evaluate_with_boundary([role_policy], boundary, other).allowed
    # Even a role policy granting everything stays inside the boundary.
    admin = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    assert evaluate_with_boundary([admin], boundary, own).allowed
    for request in (
        other,
        Request("iam:CreateRole", "arn:aws:iam::123456789012:role/x", as_app),
        Request("ec2:RunInstances", "arn:aws:ec2:us-east-1:123456789012:instance/new", as_app),
        Request(
            "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:1:secret:x", as_app
        ),
    ):
        assert not evaluate_with_boundary([admin], boundary, request).allowed, request
