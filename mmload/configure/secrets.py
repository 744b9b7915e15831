"""Secrets of a configure run: the database password, read at run time (MMLOAD_DB_PASSWORD,
else the RDS-managed secret), and Grafana's admin password, generated once and kept 0600 in the
working directory. Neither is ever written to a rendered file, a log or a Terraform output."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from mmload.errors import RunFailed, UserError

PASSWORD_ENV = "MMLOAD_DB_PASSWORD"
GRAFANA_PASSWORD_FILE = "grafana-admin-password"


def ensure_grafana_password(workdir: Path) -> tuple[str, bool]:
    """Grafana's admin password from ``workdir`` (0600), made there if missing; and whether it
    was made now (then the caller shows it, once)."""
    path = workdir / GRAFANA_PASSWORD_FILE
    if path.is_file():
        path.chmod(0o600)
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value, False
    value = secrets.token_urlsafe(24)
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return value, True


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
