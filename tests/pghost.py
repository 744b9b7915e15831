"""A real PostgreSQL server on a loopback address, standing in for a deployment's RDS writer.

Debian's PostgreSQL binaries refuse to run as root, so as root the server runs as a system user
the fixture creates (``mmload-pg``). TLS is on with a self-signed certificate and pg_hba admits
only ``hostssl`` connections with SCRAM passwords, as RDS with ``rds.force_ssl`` does.
"""

from __future__ import annotations

import datetime
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from mmload.net import free_port

PG_USER = "mmload-pg"


def pg_bin() -> Path:
    """The newest /usr/lib/postgresql/N/bin."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries missing: `make sysdeps` installs them")
    return found[-1].parent


def _self_signed(folder: Path, host: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (folder / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(folder / "server.key", 0o600)


class PostgresHost:
    """initdb + postgres on ``address:port``; a role and a database for the test."""

    def __init__(self, address: str, *, user: str, password: str, dbname: str):
        self.address, self.user, self.password, self.dbname = address, user, password, dbname
        self.bin = pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="mmload-pgtest-"))
        self.data = self.root / "data"
        self.port = free_port(address)
        self.proc: subprocess.Popen[bytes] | None = None
        self.run_as = self._account()

    def _account(self) -> list[str]:
        """The command prefix to run as the server's user (a created one when root)."""
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            created = subprocess.run(
                ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", PG_USER],
                check=False,
            )
            if created.returncode not in (0, 9):  # 9: created meanwhile by a parallel worker
                raise subprocess.CalledProcessError(created.returncode, "useradd") from None
        shutil.chown(self.root, PG_USER, PG_USER)
        return ["runuser", "-u", PG_USER, "--"]

    def _as_server_user(self, path: Path) -> None:
        if self.run_as:
            shutil.chown(path, PG_USER, PG_USER)

    def start(self) -> PostgresHost:
        admin_pw = self.root / "admin.pw"
        admin_pw.write_text("admin-" + os.urandom(8).hex() + "\n")
        self._as_server_user(admin_pw)
        self.admin_password = admin_pw.read_text().strip()
        subprocess.run(
            [
                *self.run_as,
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={admin_pw}",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
        )
        _self_signed(self.data, self.address)
        for name in ("server.crt", "server.key"):
            self._as_server_user(self.data / name)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '{self.address}'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\nssl = on\nfsync = off\n"
            )
        (self.data / "pg_hba.conf").write_text(
            "local all postgres scram-sha-256\nhostssl all all 127.0.0.0/8 scram-sha-256\n"
        )
        self._as_server_user(self.data / "pg_hba.conf")
        log = (self.root / "postgres.log").open("wb")
        self.proc = subprocess.Popen(
            [*self.run_as, str(self.bin / "postgres"), "-D", str(self.data)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait()
        self.admin_sql(
            f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}'",
            f"CREATE DATABASE {self.dbname} OWNER {self.user}",
        )
        return self

    def _wait(self) -> None:
        deadline = time.monotonic() + 60  # returns once it listens
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError((self.root / "postgres.log").read_text()[-2000:])
            try:
                socket.create_connection((self.address, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("postgres did not start")

    @property
    def dsn(self) -> str:
        """A ``postgresql://`` URL of the test database (the test's role, TLS required)."""
        return (
            f"postgresql://{self.user}:{self.password}@{self.address}:{self.port}/"
            f"{self.dbname}?sslmode=require"
        )

    def admin_sql(self, *statements: str) -> None:
        env = {**os.environ, "PGPASSWORD": self.admin_password}  # the test's own superuser
        for sql in statements:
            subprocess.run(
                [
                    "psql",
                    "-h",
                    str(self.root),
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    sql,
                ],
                check=True,
                capture_output=True,
                env=env,
            )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
