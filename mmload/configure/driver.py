"""Run ansible/site.yml with ansible-runner: progress as it goes, failures as host/task/message.

Secrets (the database password) go to ansible-playbook through a 0600 vars file in a private
temporary folder that is removed when the run ends; they are blanked in the environment that
ansible-runner records in its artifacts, and every task that sees them has ``no_log``.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmload.configure.progress import Reporter
from mmload.resources import resource_dir

# The playbook: ansible/ shipped with mmload, or $MMLOAD_ANSIBLE_DIR.
ANSIBLE_DIR = resource_dir("ansible", "MMLOAD_ANSIBLE_DIR")
PLAYBOOK = "site.yml"
# Environment variables never handed to (and so never recorded by) ansible-runner.
SENSITIVE_ENV = (
    "MMLOAD_DB_PASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
)
MAX_MESSAGE = 400
_RUN_NUMBER = itertools.count(1)


@dataclass
class TaskFailure:
    """One failed (or unreachable) host in one task."""

    host: str
    task: str
    message: str

    def one_line(self) -> str:
        return f"host {self.host}: task {self.task!r}: {self.message}"


@dataclass
class PlaybookResult:
    """What a run did, per host, and what failed."""

    status: str
    rc: int
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[TaskFailure] = field(default_factory=list)
    artifacts: Path | None = None

    def last_output_line(self) -> str:
        """The last non-empty line ansible-playbook printed (why a run died without a task)."""
        stdout = self.artifacts / "stdout" if self.artifacts else None
        if not stdout or not stdout.is_file():
            return ""
        lines = [ln.strip() for ln in stdout.read_text(errors="replace").splitlines()]
        lines = [ln for ln in lines if ln]
        return lines[-1][:MAX_MESSAGE] if lines else ""

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0 and not self.failures

    def total(self, counter: str) -> int:
        """Sum of one PLAY RECAP counter (ok, changed, failures, dark, skipped) over hosts."""
        return sum(self.stats.get(counter, {}).values())


def failure_message(res: dict[str, Any]) -> str:
    """The most useful one-line message from a failed module result."""
    msg = res.get("msg") or ""
    modules = res.get("failed_modules")
    if isinstance(modules, dict) and modules:  # fact gathering: the module's own failure
        return failure_message(next(iter(modules.values())))
    if res.get("module_stderr"):
        msg = f"{msg}: {res['module_stderr']}" if msg else res["module_stderr"]
    if not msg and isinstance(res.get("results"), list):
        failed = [r for r in res["results"] if isinstance(r, dict) and r.get("failed")]
        if failed:
            msg = failure_message(failed[0])
    stderr = (res.get("stderr") or "").strip()
    if stderr:
        msg = f"{msg}: {stderr.splitlines()[-1]}" if msg else stderr.splitlines()[-1]
    if not msg:
        msg = "failed (no message)"
    line = " ".join(str(msg).split())
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 1] + "…"


class EventCollector:
    """ansible-runner event handler: feeds the reporter and collects failures and stats."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.failures: list[TaskFailure] = []
        self.stats: dict[str, dict[str, int]] = {}

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = data.get("host") or data.get("remote_addr") or ""
        task = data.get("task") or ""
        res = data.get("res") if isinstance(data.get("res"), dict) else {}
        if kind == "playbook_on_play_start":
            self.reporter.play(data.get("name") or data.get("play") or "")
        elif kind in ("playbook_on_task_start", "playbook_on_handler_task_start"):
            self.reporter.task(task)
        elif kind == "runner_on_ok":
            self.reporter.result("changed" if res.get("changed") else "ok", host, task)
        elif kind == "runner_on_skipped":
            self.reporter.result("skipped", host, task)
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            self._fail(host, task, failure_message(res))
        elif kind == "runner_on_unreachable":
            self._fail(host, task, "unreachable: " + failure_message(res))
        elif kind == "playbook_on_stats":
            self.stats = {
                k: dict(data.get(k) or {})
                for k in (
                    "ok",
                    "changed",
                    "failures",
                    "dark",
                    "skipped",
                    "rescued",
                    "ignored",
                    "processed",
                )
            }
        return True  # keep the event in the artifacts

    def _fail(self, host: str, task: str, message: str) -> None:
        failure = TaskFailure(host, task, message)
        self.failures.append(failure)
        self.reporter.result("failed", host, task, message)


@contextmanager
def secret_vars_file(secrets: dict[str, str]) -> Iterator[Path | None]:
    """A 0600 JSON vars file in a private temporary folder, removed afterwards."""
    if not secrets:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="mmload-secrets-"))  # mode 0700
    path = folder / "secrets.json"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(secrets, f)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def runner_env(secrets: dict[str, str]) -> dict[str, str]:
    """Environment overrides: our ansible.cfg, and sensitive variables blanked."""
    secret_values = {v for v in secrets.values() if v}
    env = {k: "" for k, v in os.environ.items() if k in SENSITIVE_ENV or (v and v in secret_values)}
    env["ANSIBLE_CONFIG"] = str(ANSIBLE_DIR / "ansible.cfg")
    # The ansible-playbook of this Python environment (the `ansible` package mmload depends on).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env["ANSIBLE_NOCOLOR"] = "1"
    return env


def run_playbook(
    *,
    inventory: dict[str, Any],
    work_dir: Path,
    reporter: Reporter,
    extravars: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    tags: list[str] | None = None,
    skip_tags: list[str] | None = None,
    check: bool = False,
    limit: str | None = None,
    timeout: int | None = None,
    event_hook: Callable[[dict[str, Any]], None] | None = None,
) -> PlaybookResult:
    """Run site.yml against ``inventory``; never raises for a failed play (see the result)."""
    import ansible_runner  # heavy import, only when configuring

    secrets = secrets or {}
    work_dir.mkdir(parents=True, exist_ok=True)
    collector = EventCollector(reporter)

    def handler(event: dict[str, Any]) -> bool:
        if event_hook:
            event_hook(event)
        return collector(event)

    ident = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}-{next(_RUN_NUMBER)}"
    with secret_vars_file(secrets) as secret_file:
        cmdline = []
        if secret_file:
            cmdline += ["-e", f"@{secret_file}"]
        if check:
            cmdline.append("--check")
        try:
            run = ansible_runner.run(
                private_data_dir=str(work_dir),
                project_dir=str(ANSIBLE_DIR),
                playbook=PLAYBOOK,
                inventory=inventory,
                extravars=extravars or {},
                cmdline=" ".join(cmdline) or None,
                tags=",".join(tags) if tags else None,
                skip_tags=",".join(skip_tags) if skip_tags else None,
                limit=limit,
                envvars=runner_env(secrets),
                event_handler=handler,
                quiet=True,
                ident=ident,
                rotate_artifacts=10,
                timeout=timeout,
            )
        finally:
            reporter.close()  # also on Ctrl-C: the live display is released
    artifacts = Path(run.config.artifact_dir) if getattr(run, "config", None) else None
    return PlaybookResult(
        status=run.status,
        rc=run.rc if run.rc is not None else -1,
        stats=collector.stats,
        failures=collector.failures,
        artifacts=artifacts,
    )
