"""The database password, read at run time: MMLOAD_DB_PASSWORD, else the RDS-managed secret."""

from __future__ import annotations

import json
import os

from mmload.errors import RunFailed, UserError

PASSWORD_ENV = "MMLOAD_DB_PASSWORD"


def read_db_password(
    secret_arn: str | None,
    *,
    region: str,
    profile: str | None = None,
    endpoint_url: str | None = None,
    source: str = "outputs.json",
) -> str:
    """The password from ``$MMLOAD_DB_PASSWORD`` or the Secrets Manager secret ``secret_arn``."""
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    if not secret_arn:
        raise UserError(
            f"no database secret to read; set {PASSWORD_ENV}",
            source=source,
            field="database.master_secret_arn",
        )
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise UserError(
            f"reading the RDS-managed secret needs boto3; or set {PASSWORD_ENV}",
            source=source,
            field="database.master_secret_arn",
        ) from None
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
        client = session.client("secretsmanager", endpoint_url=endpoint_url)
        value = client.get_secret_value(SecretId=secret_arn)["SecretString"]
    except (BotoCoreError, ClientError) as exc:
        # The exception names the secret and the AWS error, never the secret's value.
        raise RunFailed(f"cannot read the database secret {secret_arn}: {exc}") from None
    return password_from_secret(value, secret_arn)


def password_from_secret(value: str, secret_arn: str) -> str:
    """RDS-managed secrets are JSON ``{"username": …, "password": …}``."""
    try:
        data = json.loads(value)
    except json.JSONDecodeError:
        raise RunFailed(f"database secret {secret_arn} is not JSON") from None
    password = data.get("password") if isinstance(data, dict) else None
    if not isinstance(password, str) or not password:
        raise RunFailed(f"database secret {secret_arn} has no password field")
    return password
