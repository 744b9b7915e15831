"""`mmload db`: psql on the laptop, to the deployment's database through the jump host.

An SSH local forward (``ssh -N -L 127.0.0.1:PORT:<writer>:<port> <coordinator>``, in its own
session so the terminal's Ctrl-C reaches psql only) carries a TLS connection
(``sslmode=require``) from psql to the database. The password comes from the RDS-managed secret
(or ``$MMLOAD_DB_PASSWORD``) and reaches psql through a 0600 ``PGPASSFILE`` in a private
temporary folder, removed afterwards: never a command line, an environment variable or a log.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmload.configure.secrets import read_db_password
from mmload.errors import RunFailed, UserError
from mmload.lifecycle.hosts import Reached, resolve_host
from mmload.net import free_port

TUNNEL_WAIT_S = 30


def pgpass_escape(value: str) -> str:
    """A field of a .pgpass line (``:`` and ``\\`` escaped)."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


@contextmanager
def pgpass_file(port: int, dbname: str, user: str, password: str) -> Iterator[Path]:
    """A 0600 PGPASSFILE in a 0700 temporary folder, removed when the block ends."""
    folder = Path(tempfile.mkdtemp(prefix="mmload-pg-"))
    path = folder / "pgpass"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fields = ["127.0.0.1", str(port), dbname, user, password]
            fh.write(":".join(pgpass_escape(f) for f in fields) + "\n")
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def tunnel(reached: Reached, via: str, target: str, target_port: int) -> Iterator[int]:
    """Forward a local port to ``target:target_port`` through host ``via``; yields the port.

    The ssh process runs in its own session (the terminal's signals do not reach it) and is
    stopped by its pid when the block ends.
    """
    port = free_port()
    argv = reached.access.argv(
        via,
        "-N",
        "-o",
        "ExitOnForwardFailure=yes",
        "-L",
        f"127.0.0.1:{port}:{target}:{target_port}",
    )
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()


def wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the forward accepts connections; RunFailed with ssh's error otherwise."""
    deadline = time.monotonic() + TUNNEL_WAIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            why = (err.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            raise RunFailed(f"SSH tunnel to the database failed: {why}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RunFailed(f"SSH tunnel to the database did not open within {TUNNEL_WAIT_S} s")


def psql_argv(port: int, dbname: str, user: str, extra: tuple[str, ...]) -> list[str]:
    """psql with a connection string that holds no password."""
    conninfo = (
        f"host=127.0.0.1 port={port} dbname={dbname} user={user} sslmode=require "
        "application_name=mmload-db connect_timeout=20"
    )
    return ["psql", conninfo, *extra]


def run_psql(reached: Reached, extra: tuple[str, ...], *, reader: bool = False) -> int:
    """Open the tunnel, run psql (interactive, or with ``extra`` arguments), return its code."""
    if shutil.which("psql") is None:
        raise UserError("psql not found: install the PostgreSQL client (postgresql-client)")
    db = reached.outputs.database
    if db is None:
        raise UserError(
            "this deployment has no database (an existing server is its target)",
            source=str(reached.outputs_path),
            field="database",
        )
    endpoint = db.writer_endpoint
    if reader:
        if not db.reader_endpoints:
            raise UserError("this deployment has no database reader", field="--reader")
        endpoint = db.reader_endpoints[0]
    password = read_db_password(
        db.master_secret_arn,
        region=reached.outputs.region,
        profile=reached.dep.aws.profile,
        endpoint_url=reached.dep.aws.endpoint_url,
        source=str(reached.outputs_path),
    )
    via = resolve_host(reached.outputs, "coordinator")
    with (
        tunnel(reached, via, endpoint, db.port) as port,
        pgpass_file(port, db.name, db.username, password) as passfile,
    ):
        env = {**os.environ, "PGPASSFILE": str(passfile)}
        env.pop("PGPASSWORD", None)
        proc = subprocess.Popen(psql_argv(port, db.name, db.username, extra), env=env)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is psql's
        try:
            return proc.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
