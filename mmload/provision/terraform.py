"""Drive the Terraform CLI for one deployment working directory.

python-terraform builds every command line (its option conventions); the process runs under our
own ``Popen`` so Terraform's output streams line by line (python-terraform's ``cmd`` only returns
output when the command ends). Every run is logged to ``<workdir>/logs/``. A failure raises
``RunFailed`` carrying Terraform's own error text.

The working directory is private: 0700, and Terraform runs under umask 077 so the state, its
backup, the saved plan and ``.terraform/`` are 0600/0700 (a state written by an older mmload is
tightened on the next run); mmload's own files there (logs, outputs.json) are 0600 too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from python_terraform import IsFlagged, Terraform

from mmload.errors import RunFailed, UserError

PLAN_FILE = "tfplan"
SUMMARY_FILE = "tfplan.summary.json"
PLAN_LINE = re.compile(r"^Plan: (\d+) to add, (\d+) to change, (\d+) to destroy\.")
CHANGE_LINE = re.compile(r"^  # (\S+) (will be|must be) ")
OUTPUTS_FILE = "outputs.json"
OUTPUT_NAME = "mmload"
PLUGIN_DIR_ENV = "MMLOAD_TF_PLUGIN_DIR"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
PRIVATE_UMASK = 0o077
# What Terraform leaves in the working directory that must be readable by the owner only.
PRIVATE_FILES = ("terraform.tfstate", "terraform.tfstate.backup", PLAN_FILE)

LineSink = Callable[[str], None]


@dataclass
class PlanSummary:
    """What a saved plan will do."""

    add: int = 0
    change: int = 0
    destroy: int = 0
    resources: list[str] = field(default_factory=list)

    def line(self) -> str:
        """``Plan: 3 to add, 0 to change, 0 to destroy.`` like Terraform's own."""
        return f"Plan: {self.add} to add, {self.change} to change, {self.destroy} to destroy."


def summary_from_lines(lines: list[str]) -> PlanSummary:
    """Terraform's own plan summary line and the addresses it will act on."""
    summary = PlanSummary()
    for line in lines:
        if m := PLAN_LINE.match(line):
            summary.add, summary.change, summary.destroy = map(int, m.groups())
        elif m := CHANGE_LINE.match(line):
            summary.resources.append(m.group(1))
    return summary


def error_text(lines: list[str]) -> str:
    """Terraform's own error blocks (``Error: ...`` and their detail), else the last lines."""
    blocks: list[str] = []
    current: list[str] | None = None
    for raw in lines:
        line = raw.strip().lstrip("│╷╵").strip()
        if line.startswith("Error:"):
            current = [line]
            blocks.append("")
        elif current is not None and line:
            if len(current) < 8:
                current.append(line)
        elif current is not None and not line and len(current) > 1:
            blocks[-1] = " ".join(current)
            current = None
            continue
        if current is not None:
            blocks[-1] = " ".join(current)
    found = [b for b in blocks if b]
    if found:
        return "\n".join(dict.fromkeys(found))
    tail = [ln.strip() for ln in lines if ln.strip()][-5:]
    return "\n".join(tail) or "(no output)"


def private_open(path: Path) -> TextIO:
    """``path`` opened for writing (truncated), created 0600 and made 0600 if it was not."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8")


class TerraformDriver:
    """One deployment's working directory and the terraform binary that acts on it."""

    def __init__(
        self,
        workdir: Path,
        *,
        binary: str = "terraform",
        plugin_dir: str | None = None,
        sink: LineSink | None = None,
        env: dict[str, str] | None = None,
    ):
        self.workdir = workdir
        self.binary = binary
        self.plugin_dir = plugin_dir or os.environ.get(PLUGIN_DIR_ENV) or None
        self.sink = sink or (lambda _line: None)
        self.env = {"CHECKPOINT_DISABLE": "1", **os.environ, **(env or {})}
        self.env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0"})
        self.tf = Terraform(working_dir=str(workdir), terraform_bin_path=binary)
        workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        workdir.chmod(0o700)
        (workdir / "logs").mkdir(mode=0o700, exist_ok=True)
        self.tighten()

    def tighten(self) -> None:
        """State, backup and plan 0600 (also those written before mmload kept them private)."""
        for name in PRIVATE_FILES:
            path = self.workdir / name
            if path.is_file():
                path.chmod(0o600)

    # -- running -----------------------------------------------------------------------------

    def argv(self, cmd: str, *args: str, **options: object) -> list[str]:
        """The full command line, built by python-terraform."""
        return self.tf.generate_cmd_string(cmd, *args, **options)

    def run(self, cmd: str, *args: str, check: bool = True, **options: object) -> list[str]:
        """Run a terraform command, streaming and logging each line; return all lines."""
        if shutil.which(self.binary) is None:
            raise UserError(
                f"terraform CLI not found ({self.binary}); install Terraform >= 1.5",
                field="terraform.binary",
            )
        argv = self.argv(cmd, *args, no_color=IsFlagged, **options)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        log_path = self.workdir / "logs" / f"{stamp}-{cmd.replace(' ', '-')}.log"
        lines: list[str] = []
        with private_open(log_path) as log:
            log.write("$ " + " ".join(argv) + "\n")
            proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                umask=PRIVATE_UMASK,
            )
            assert proc.stdout is not None
            try:
                for raw in proc.stdout:
                    line = ANSI.sub("", raw.rstrip("\n"))
                    lines.append(line)
                    log.write(line + "\n")
                    log.flush()
                    self.sink(line)
            except KeyboardInterrupt:
                # Terraform got the same SIGINT: let it stop cleanly and save its state.
                self.sink("interrupted: waiting for terraform to stop and save its state...")
                proc.wait()
                log.write("# interrupted\n")
                raise
            code = proc.wait()
            log.write(f"# exit {code}\n")
        self.tighten()
        if check and code != 0:
            raise RunFailed(f"terraform {cmd} failed (log: {log_path}):\n{error_text(lines)}")
        return lines

    def capture(self, cmd: str, *args: str) -> str:
        """Run a read-only terraform command quietly; return its stdout (stderr is logged)."""
        argv = self.argv(cmd, *args, no_color=IsFlagged)
        proc = subprocess.run(
            argv,
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            umask=PRIVATE_UMASK,
        )
        log_path = (
            self.workdir / "logs" / f"{time.strftime('%Y%m%dT%H%M%S')}-{cmd.replace(' ', '-')}.log"
        )
        with private_open(log_path) as log:
            log.write(f"$ {' '.join(argv)}\n{proc.stderr}# exit {proc.returncode}\n")
        if proc.returncode != 0:
            text = error_text(proc.stderr.splitlines())
            raise RunFailed(f"terraform {cmd} failed (log: {log_path}):\n{text}")
        return proc.stdout

    # -- the lifecycle -------------------------------------------------------------------------

    def init(self) -> None:
        """terraform init, offline from the plugin mirror when one is configured."""
        opts: dict[str, object] = {"input": False, "upgrade": False}
        if self.plugin_dir:
            if not Path(self.plugin_dir).is_dir():
                raise UserError(
                    f"provider mirror {self.plugin_dir} is not a directory",
                    field="terraform.plugin_dir",
                )
            opts["plugin_dir"] = self.plugin_dir
        self.run("init", **opts)

    def validate(self) -> None:
        """terraform validate."""
        self.run("validate")

    def plan(self) -> PlanSummary:
        """terraform plan to the saved plan file; returns what it will do."""
        return self._plan()

    def _plan(self, *args: str) -> PlanSummary:
        lines = self.run("plan", *args, input=False, out=PLAN_FILE, lock_timeout="60s")
        summary = summary_from_lines(lines)
        with private_open(self.workdir / SUMMARY_FILE) as fh:
            fh.write(json.dumps(summary.__dict__))
        return summary

    def saved_plan_json(self) -> dict:
        """``terraform show -json`` of the saved plan (what `mmload infra check` reads)."""
        if not (self.workdir / PLAN_FILE).exists():
            raise UserError(
                "no saved plan here: run `mmload infra plan` first",
                source=str(self.workdir / PLAN_FILE),
            )
        return json.loads(self.capture("show", "-json", PLAN_FILE))

    def saved_summary(self) -> PlanSummary | None:
        """The summary written with the saved plan, if any."""
        path = self.workdir / SUMMARY_FILE
        if not path.exists():
            return None
        return PlanSummary(**json.loads(path.read_text(encoding="utf-8")))

    def apply(self) -> dict:
        """Apply the saved plan, then write and return outputs.json."""
        plan = self.workdir / PLAN_FILE
        if not plan.exists():
            raise UserError("no saved plan here: run `mmload infra plan` first", source=str(plan))
        try:
            self.run("apply", PLAN_FILE, input=False, lock_timeout="60s")
        finally:
            plan.unlink(missing_ok=True)  # a saved plan is single-use either way
            (self.workdir / SUMMARY_FILE).unlink(missing_ok=True)
        return self.outputs()

    def outputs(self) -> dict:
        """Read the `mmload` output as JSON and write it to outputs.json."""
        data = json.loads(self.capture("output", "-json", OUTPUT_NAME))
        path = self.workdir / OUTPUTS_FILE
        with private_open(path) as fh:
            fh.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return data

    def destroy(self) -> None:
        """Destroy everything in the state; remove outputs.json and any saved plan."""
        self.run("destroy", input=False, auto_approve=IsFlagged, lock_timeout="60s")
        for name in (OUTPUTS_FILE, PLAN_FILE):
            (self.workdir / name).unlink(missing_ok=True)

    def state_resources(self) -> list[str]:
        """Addresses still in the state (empty after a clean destroy)."""
        if not (self.workdir / "terraform.tfstate").exists():
            return []
        return [ln for ln in self.capture("state list").splitlines() if ln.strip()]
