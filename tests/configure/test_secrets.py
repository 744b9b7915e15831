"""The database password: from the environment, else the RDS-managed secret in Secrets Manager.

AWS cannot be reached from tests: Secrets Manager is emulated in-process by moto.
"""

from __future__ import annotations

import json

import pytest

from mmload.configure.secrets import PASSWORD_ENV, read_db_password
from mmload.errors import RunFailed, UserError


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    moto = pytest.importorskip("moto")  # a dev dependency; always installed in CI
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with moto.mock_aws():
        import boto3

        yield boto3.client("secretsmanager", region_name="us-east-1")


def test_reads_the_rds_managed_secret(aws) -> None:
    arn = aws.create_secret(
        Name="rds!cluster-abc", SecretString=json.dumps({"username": "mmuser", "password": "pw-1"})
    )["ARN"]
    assert read_db_password(arn, region="us-east-1") == "pw-1"


def test_environment_wins(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    assert read_db_password("arn:aws:secretsmanager:us-east-1:1:secret:x", region="us-east-1") == (
        "from-env"
    )


def test_missing_secret_is_a_run_failure_without_the_value(aws) -> None:
    with pytest.raises(RunFailed, match="cannot read the database secret"):
        read_db_password(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf", region="us-east-1"
        )


def test_secret_without_password(aws) -> None:
    arn = aws.create_secret(Name="x", SecretString=json.dumps({"username": "u"}))["ARN"]
    with pytest.raises(RunFailed, match="has no password field"):
        read_db_password(arn, region="us-east-1")


def test_no_arn_and_no_env_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    with pytest.raises(UserError) as err:
        read_db_password(None, region="us-east-1", source="out.json")
    assert err.value.one_line().startswith("out.json: database.master_secret_arn:")
