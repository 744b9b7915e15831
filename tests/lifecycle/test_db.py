"""`mmload db`: psql through the jump host to a real PostgreSQL, the password read from the
RDS-managed secret (Secrets Manager on a moto server, as AWS cannot be reached here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from tests.lifecycle.test_ssh import processes_mentioning
from tests.pghost import PostgresHost
from tests.provision.conftest import MotoServer

NAME = "mm-db"
COORD = f"{NAME}-coordinator-0"
QUERY = (
    "select current_user, s.ssl from pg_stat_ssl s join pg_stat_activity a using (pid) "
    "where a.pid = pg_backend_pid()"
)


@pytest.fixture
def moto(tmp_path: Path):
    server = MotoServer(tmp_path / "moto.log")
    try:
        yield server
    finally:
        server.stop()


def test_db_through_the_jump_host_with_the_managed_secret(
    tmp_path: Path, ssh_hosts, moto: MotoServer
) -> None:
    password = "Pw:" + os.urandom(12).hex()  # a ':' exercises the pgpass escaping
    ssh_hosts.start("jump", COORD)
    address = f"{ssh_hosts.prefix}.9"
    pg = PostgresHost(address, user="mmuser", password=password, dbname="mattermost")
    try:
        pg.start()
        secret = moto.client("secretsmanager").create_secret(
            Name=f"rds!cluster-{NAME}",
            SecretString=json.dumps({"username": "mmuser", "password": password}),
        )
        workdir = tmp_path / ".deployments" / NAME
        database = {
            "engine": "postgres",
            "writer_endpoint": pg.address,
            "reader_endpoints": [],
            "port": pg.port,
            "name": "mattermost",
            "username": "mmuser",
            "master_secret_arn": secret["ARN"],
        }
        ssh_hosts.outputs(
            workdir,
            deployment=NAME,
            jump="jump",
            roles={"coordinator": [COORD]},
            extra={"database": database},
        )
        config = tmp_path / "deployment.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "name": NAME,
                    "tier": 200,
                    "operator_cidrs": ["203.0.113.7/32"],
                    "working_dir": str(tmp_path / ".deployments"),
                    "aws": {"endpoint_url": moto.url},
                }
            )
        )
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        env.pop("MMLOAD_DB_PASSWORD", None)
        env.pop("PGPASSWORD", None)
        out = run_cli("db", "-c", str(config), "--", "-At", "-c", QUERY, env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "mmuser|t"  # authenticated, over TLS
        assert len(ssh_hosts.sessions("jump")) == 1 and len(ssh_hosts.sessions(COORD)) == 1
        assert password not in out.stdout + out.stderr
        for path in workdir.rglob("*"):
            if path.is_file():
                assert password not in path.read_text(errors="replace"), path
        assert processes_mentioning(str(workdir / "ssh_config")) == []  # the tunnel is gone

        out = run_cli("db", "-c", str(config), "--", "-c", "select nosuchcolumn", env=env)
        assert out.returncode != 0 and "nosuchcolumn" in out.stderr  # psql's own exit code
        out = run_cli("db", "-c", str(config), "--reader", env=env)
        assert out.returncode == 2 and "no database reader" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    finally:
        pg.stop()
