"""Remote execution on a deployment's hosts over SSH (through the jump host where needed).

The primitives the remote load path needs, each one OpenSSH command:

- ``run``: a command, waited for.
- ``start_job``: a command detached from the connection (``setsid nohup`` in its own session and
  process group, no systemd or tmux needed) whose pid and exit code land in a job folder on the
  host, so it survives a dropped connection; ``job_state`` reads them back; ``stop_job``
  signals the job's whole process group (SIGINT first, so a load run saves its record).
- ``fetch_dir``: ``rsync`` a folder back, then prove it complete against a sha256 manifest
  computed on the host.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmload.configure.ssh import SshAccess
from mmload.errors import RunFailed, UserError

# The detached job: `sh` is the session and group leader; it records its pid, runs the
# command with output to out.log, and records the exit code (traps keep it alive through the
# SIGINT/SIGTERM meant for the command; the command itself gets the default handlers).
JOB_SCRIPT = (
    "trap : INT TERM; echo $$ > pid.tmp && mv pid.tmp pid; "
    '"$@" > out.log 2>&1; echo $? > exit.tmp; mv exit.tmp exit'
)


# A killed job whose parent never reaps it (a container's init may not) stays a zombie, which
# `kill -0` still finds: `zombie PID` tells (Linux hosts).
ZOMBIE_FN = "zombie() { grep -qs '^State:[[:space:]]*Z' /proc/$1/status; };"


@dataclass(frozen=True)
class JobState:
    """What a detached job is doing: ``running``, ``exited`` (with its code), ``lost`` (killed
    without recording an exit code) or ``absent`` (no such job folder)."""

    phase: str
    pid: int | None = None
    exit_code: int | None = None

    @property
    def running(self) -> bool:
        return self.phase == "running"


@dataclass(frozen=True)
class Job:
    """A detached command on ``host`` whose bookkeeping lives in the folder ``folder``."""

    host: str
    folder: str


class Remote:
    """Runs commands on a deployment's hosts with ``ssh -F <ssh_config> NAME``."""

    def __init__(self, access: SshAccess, *, timeout: float = 120):
        self.access = access
        self.timeout = timeout
        if shutil.which("ssh") is None:
            raise UserError("ssh not found: install the OpenSSH client")

    def check_host(self, host: str) -> None:
        if host not in self.access.hosts:
            known = ", ".join(sorted(self.access.hosts)) or "none"
            raise UserError(f"unknown host {host!r}; outputs.json names: {known}")

    def run(
        self,
        host: str,
        command: str,
        *,
        check: bool = True,
        timeout: float | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the shell ``command`` on ``host`` and wait for it; ``stdin`` is its input (a
        secret goes there, never into the command line)."""
        self.check_host(host)
        argv = [*self.access.argv(host, "-T"), command]
        feed: dict[str, Any] = {"stdin": subprocess.DEVNULL} if stdin is None else {"input": stdin}
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout or self.timeout,
                check=False,
                **feed,
            )
        except subprocess.TimeoutExpired:
            waited = timeout or self.timeout
            raise RunFailed(f"ssh {host}: no answer within {waited:.0f} s") from None
        if check and proc.returncode != 0:
            why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            raise RunFailed(f"ssh {host}: {why}")
        return proc

    # -- detached jobs -------------------------------------------------------------------------

    def start_job(
        self, host: str, folder: str, argv: list[str], *, remove: tuple[str, ...] = ()
    ) -> Job:
        """Start ``argv`` on ``host`` detached from this connection; its files go to ``folder``
        (created; ``remove`` names files of an earlier job to delete first; a job already
        running there is refused). One SSH round trip."""
        q = shlex.quote
        stale = " ".join(q(name) for name in ("pid", "exit", "out.log", *remove))
        script = (
            f"set -e; mkdir -p {q(folder)}; cd {q(folder)}; "
            f"{ZOMBIE_FN} "
            'if [ -s pid ] && kill -0 "$(cat pid)" 2>/dev/null && ! zombie "$(cat pid)"; then '
            'echo "running $(cat pid)"; exit 0; fi; '
            f"rm -f {stale}; "
            f"setsid nohup sh -c {q(JOB_SCRIPT)} mmload-job {shlex.join(argv)} "
            "</dev/null >/dev/null 2>&1 & "
            "i=0; while [ ! -s pid ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; cat pid"
        )
        out = self.run(host, script).stdout.strip()
        if out.startswith("running"):
            pid = out.split()[-1]
            raise RunFailed(f"{host}: a job is already running in {folder} (pid {pid})")
        if not out.isdigit():
            raise RunFailed(f"{host}: the job in {folder} did not start")
        return Job(host, folder)

    def job_state(self, job: Job) -> JobState:
        """Read the job's pid and exit code back from its folder. A killed job whose parent
        never reaps it (a container's init may not) stays a zombie: that is not running."""
        q = shlex.quote(job.folder)
        script = (
            f"cd {q} 2>/dev/null || {{ echo absent; exit 0; }}; "
            f"{ZOMBIE_FN} "
            "pid=$(cat pid 2>/dev/null || true); "
            'if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && ! zombie "$pid"; then '
            'echo "running $pid"; '
            'elif [ -s exit ]; then echo "exited $pid $(cat exit)"; '
            'else echo "lost $pid"; fi'
        )
        words = self.run(job.host, script).stdout.split()
        if not words or words[0] == "absent":
            return JobState("absent")
        pid = int(words[1]) if len(words) > 1 and words[1].isdigit() else None
        code = int(words[2]) if len(words) > 2 and words[2].lstrip("-").isdigit() else None
        return JobState(words[0], pid, code)

    def signal_job(self, job: Job, signal: str) -> None:
        """Send ``signal`` (INT, TERM, KILL) to the job's whole process group."""
        q = shlex.quote(job.folder)
        self.run(
            job.host,
            f'pid=$(cat {q}/pid 2>/dev/null) && kill -{signal} -- "-$pid" 2>/dev/null || true',
        )

    def stop_job(self, job: Job, *, grace_s: float = 60, poll_s: float = 0.5) -> JobState:
        """SIGINT the job (a load run then saves what it measured), SIGTERM after ``grace_s``,
        SIGKILL after as long again; returns the final state."""
        state = self.job_state(job)
        for signal in ("INT", "TERM", "KILL"):
            if not state.running:
                return state
            self.signal_job(job, signal)
            deadline = time.monotonic() + grace_s
            while state.running and time.monotonic() < deadline:
                time.sleep(poll_s)
                state = self.job_state(job)
        return state

    def wait_job(self, job: Job, *, timeout_s: float, poll_s: float = 1.0) -> JobState:
        """Poll until the job is no longer running (or ``timeout_s`` passes)."""
        deadline = time.monotonic() + timeout_s
        state = self.job_state(job)
        while state.running and time.monotonic() < deadline:
            time.sleep(poll_s)
            state = self.job_state(job)
        return state

    # -- copying back --------------------------------------------------------------------------

    def manifest(self, host: str, folder: str) -> dict[str, str]:
        """``{relative path: sha256}`` of every file under ``folder`` on ``host``."""
        q = shlex.quote(folder)
        out = self.run(
            host, f"cd {q} && find . -type f -print0 | xargs -0 -r sha256sum", timeout=600
        ).stdout
        found: dict[str, str] = {}
        for line in out.splitlines():
            digest, _, name = line.partition("  ")
            found[name.removeprefix("./")] = digest
        return found

    def fetch_dir(self, host: str, folder: str, local: Path) -> dict[str, str]:
        """Copy ``folder`` from ``host`` into ``local`` with rsync and check that every file
        arrived with the same content; returns the manifest."""
        if shutil.which("rsync") is None:
            raise UserError("rsync not found: install rsync (apt install rsync)")
        self.check_host(host)
        local.mkdir(parents=True, exist_ok=True)
        argv = [
            "rsync",
            "-a",
            "--partial",
            "-e",
            self.access.rsync_shell(),
            f"{host}:{folder.rstrip('/')}/",
            f"{local}/",
        ]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600)
        if proc.returncode != 0:
            why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            raise RunFailed(f"copying {host}:{folder} back failed: {why}")
        expected = self.manifest(host, folder)
        check_complete(expected, local, source=f"{host}:{folder}")
        return expected


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_complete(expected: dict[str, str], local: Path, *, source: str) -> None:
    """RunFailed naming the files missing or different in ``local``."""
    missing = [name for name in expected if not (local / name).is_file()]
    differ = [
        name
        for name, digest in expected.items()
        if name not in missing and sha256_file(local / name) != digest
    ]
    if missing or differ:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(sorted(missing)[:5])}")
        if differ:
            parts.append(f"different {', '.join(sorted(differ)[:5])}")
        raise RunFailed(f"copy of {source} into {local} is incomplete: {'; '.join(parts)}")
