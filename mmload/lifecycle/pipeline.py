"""`mmload up`: preflight -> provision -> configure -> seed, resumable from a state file.

The state file (``<working dir>/up-state.json``) records when each step finished, and which
step an interrupted or failed run stopped in. A new ``up`` runs the chosen steps that have not
finished yet, in order, and says which it skips. Ctrl-C inside a step lets the step's own tool
stop cleanly (Terraform saves its state, Ansible ends its play), then records where it stopped.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from mmload.config.deployment import Deployment
from mmload.errors import RunFailed, UserError
from mmload.files import write_atomic
from mmload.provision.terraform import PLAN_FILE

STEPS = ("preflight", "provision", "configure", "seed")
STATE_FILE = "up-state.json"


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_steps(values: tuple[str, ...] | list[str]) -> list[str]:
    """``--only a,b --only c`` -> the named steps in pipeline order (a UserError otherwise)."""
    named = [v.strip() for value in values for v in value.split(",") if v.strip()]
    for step in named:
        if step not in STEPS:
            raise UserError(
                f"unknown step {step!r}; steps: {', '.join(STEPS)}",
                source="command line",
                field="--only",
            )
    return [s for s in STEPS if s in named] if named else list(STEPS)


@dataclass
class UpState:
    """What ``up`` has done in one working directory."""

    path: Path
    finished: dict[str, str] = field(default_factory=dict)  # step -> finished at (UTC)
    stopped: dict[str, str] | None = None  # {"step", "at", "why"} of the last unfinished run

    @classmethod
    def load(cls, workdir: Path) -> UpState:
        path = workdir / STATE_FILE
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            finished = {str(k): str(v) for k, v in dict(data.get("finished", {})).items()}
        except (ValueError, TypeError, AttributeError):
            raise UserError(
                "not an up state file (delete it to start over)", source=str(path)
            ) from None
        return cls(path, finished, data.get("stopped"))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"finished": self.finished, "stopped": self.stopped}
        write_atomic(self.path, json.dumps(data, indent=2) + "\n")

    def finish(self, step: str) -> None:
        self.finished[step] = now_utc()
        if self.stopped and self.stopped.get("step") == step:
            self.stopped = None
        self.save()

    def stop(self, step: str, why: str) -> None:
        self.stopped = {"step": step, "at": now_utc(), "why": why}
        self.save()

    def forget(self) -> None:
        """After ``down``: nothing is provisioned any more."""
        self.path.unlink(missing_ok=True)


class StepLines:
    """Progress: one live line per step on a terminal, plain timestamped lines otherwise."""

    def __init__(self, console: Console, live: bool) -> None:
        self.console, self.live = console, live
        self.progress: Progress | None = None
        self.task: Any = None
        self.step = ""

    @contextmanager
    def running(self) -> Iterator[StepLines]:
        if not self.live:
            yield self
            return
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=self.console) as progress:
            self.progress = progress
            try:
                yield self
            finally:
                self.progress = None

    def _plain(self, text: str) -> None:
        self.console.print(f"{now_utc()} {text}", markup=False, highlight=False, soft_wrap=True)

    def info(self, text: str) -> None:
        """A line outside any step (resuming, what was stopped)."""
        if self.live:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self._plain(text)

    def start(self, step: str) -> None:
        self.step = step
        if self.progress is not None:
            self.task = self.progress.add_task(f"{step}: starting", total=1)
        else:
            self._plain(f"{step}: started")

    def note(self, text: str) -> None:
        """Update the step's live line (terminal) or print a timestamped line."""
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, description=f"{self.step}: {text}")
        else:
            self._plain(f"{self.step}: {text}")

    def say(self, text: str) -> None:
        """A line that stays (check results, the plan summary)."""
        if self.progress is not None:
            self.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self._plain(f"{self.step}: {text}")

    def end(self, text: str) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, description=f"{self.step}: {text}", completed=1)
            self.task = None
        else:
            self._plain(f"{self.step}: {text}")

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Stop the live display (for a confirmation prompt)."""
        if self.progress is None:
            yield
            return
        self.progress.stop()
        try:
            yield
        finally:
            self.progress.start()


Confirm = Callable[[str], bool]


@dataclass
class Up:
    """One ``mmload up`` run."""

    config: Path
    dep: Deployment
    workdir: Path
    lines: StepLines
    yes: bool = False
    confirm: Confirm | None = None
    aws_overrides: dict[str, Any] = field(default_factory=dict)
    resuming_provision: bool = False  # the last run stopped inside provision

    def step_functions(self) -> dict[str, Callable[[], str]]:
        return {
            "preflight": self.preflight,
            "provision": self.provision,
            "configure": self.configure,
            "seed": self.seed,
        }

    # -- the steps: each returns its closing line ------------------------------------------

    def preflight(self) -> str:
        from mmload.lifecycle.aws import Aws
        from mmload.lifecycle.preflight import run_preflight
        from mmload.provision.render import write_zones

        aws = Aws.for_deployment(self.dep, overrides=self.aws_overrides)
        result = run_preflight(
            self.dep,
            aws,
            self.workdir,
            str(self.config),
            on_check=lambda c: self.lines.say(c.line()),
        )
        if not result.ok:
            names = ", ".join(c.name for c in result.failed())
            raise RunFailed(f"preflight: {len(result.failed())} check(s) failed: {names}")
        if result.zones and not self.dep.availability_zones:
            write_zones(self.workdir, result.zones)
        return f"{len(result.checks)} checks passed"

    def provision(self) -> str:
        from mmload.provision.deploy import DONE, prepare
        from mmload.provision.sizing import hourly_total, unpriced

        counter = {"done": 0, "total": 0}

        def sink(line: str) -> None:
            if DONE.search(line):
                counter["done"] += 1
                of = f"/{counter['total']}" if counter["total"] else ""
                self.lines.note(f"{counter['done']}{of} resources done ({line.strip()})")

        prepared = prepare(self.config, sink)
        self.lines.note("terraform init")
        prepared.driver.init()
        self.lines.note("terraform plan")
        summary = prepared.driver.plan()
        costs = prepared.costs
        missing = unpriced(costs)
        hourly = f"${hourly_total(costs):,.2f}/h" + (
            f" (not priced: {', '.join(missing)})" if missing else ""
        )
        self.lines.say(f"{summary.line()} Estimated cost {hourly} on-demand, compute only.")
        counter["total"] = summary.add + summary.change + summary.destroy
        if not self.yes:
            assert self.confirm is not None
            with self.lines.paused():
                if not self.confirm(f"Apply this plan ({hourly}) to AWS?"):
                    raise RunFailed("not applied: the plan was declined")
        self.lines.note("terraform apply")
        try:
            outputs = prepared.driver.apply()
        except RunFailed as exc:
            if not self.resuming_provision:
                raise
            adopted = adopt_orphans(prepared.driver, str(exc))
            if not adopted:
                raise
            self.lines.say(
                "adopted into the state what the interrupted apply had created outside it: "
                + ", ".join(adopted)
            )
            prepared.driver.plan()
            outputs = prepared.driver.apply()
        nodes = sum(len(v) for v in outputs.get("hosts", {}).values())
        return f"applied; {nodes} hosts, site {outputs.get('site_url')}, {hourly}"

    def configure(self) -> str:
        from mmload.configure.run import configure

        result = configure(
            self.config,
            outputs_path=None,
            tags=[],
            skip_tags=[],
            reporter=LineReporter(self.lines),
            notice=self.lines.say,  # what the operator sees once (Grafana's new password)
        )
        return f"{len(result.stats.get('processed', {}))} hosts, {result.total('changed')} changes"

    def seed(self) -> str:
        if self.dep.target:  # the customer's server has its own users: nothing to import
            return f"nothing to import: the target {self.dep.target.url} has its own users"
        from mmload.config.sim import PopulationSpec
        from mmload.configure.plan import users_for
        from mmload.configure.run import configure
        from mmload.sim.bulk import write_bulk_import
        from mmload.sim.population import Population

        users = users_for(self.dep)
        path = self.workdir / "seed" / "population.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            count = write_bulk_import(Population(PopulationSpec(users=users)), fh)
        self.lines.note(f"{count} import lines for {users} users written to {path}")
        configure(
            self.config,
            outputs_path=None,
            tags=["seed"],
            skip_tags=[],
            seed_file=path,
            reporter=LineReporter(self.lines),
        )
        return f"{users} users imported"

    # -- the run ----------------------------------------------------------------------------

    def run(self, steps: list[str], again: str) -> list[str]:
        """Run the chosen steps not finished yet; return those run. ``again`` is the command
        line that continues."""
        state = UpState.load(self.workdir)
        done = [s for s in steps if s in state.finished]
        todo = [s for s in steps if s not in state.finished]
        if state.stopped and state.stopped.get("step") in todo:
            s = state.stopped
            self.lines.info(
                f"the last `up` stopped in {s['step']} at {s['at']} ({s.get('why', '?')})"
            )
        if done:
            when = ", ".join(f"{s} (finished {state.finished[s]})" for s in done)
            rest = f"continuing with {todo[0]}" if todo else "nothing left to do"
            self.lines.info(f"resuming: already done: {when}; {rest}")
        if not todo:
            return []
        self.resuming_provision = bool(state.stopped and state.stopped.get("step") == "provision")
        if "provision" in todo and not self.yes and self.confirm is None:
            raise UserError(
                "up applies a plan: give --yes when not run from a terminal", field="--yes"
            )
        functions = self.step_functions()
        with self.lines.running():
            for step in todo:
                self.lines.start(step)
                started = time.monotonic()
                try:
                    closing = functions[step]()
                except KeyboardInterrupt:
                    state.stop(step, "interrupted")
                    self.lines.end("interrupted")
                    raise Interrupted(step, again) from None
                except UserError:
                    state.stop(step, "failed")
                    self.lines.end("failed")
                    raise
                except RunFailed as exc:
                    state.stop(step, "failed")
                    self.lines.end("failed")
                    raise RunFailed(
                        f"{exc}\n{step} failed; fix the cause and continue with `{again}`"
                    ) from None
                state.finish(step)
                self.lines.end(f"done in {time.monotonic() - started:.0f} s: {closing}")
        return todo


# Resources with a name of their own: an apply interrupted while creating one can leave it in
# AWS but not in the state (the provider's create was cancelled after AWS's create call); the
# next apply then fails with "already exists". Type -> how its import ID reads from the plan.
IMPORT_IDS: dict[str, Callable[[dict], str]] = {
    "aws_iam_role": lambda v: v["name"],
    "aws_iam_instance_profile": lambda v: v["name"],
    "aws_iam_role_policy": lambda v: f"{v['role']}:{v['name']}",
    "aws_key_pair": lambda v: v["key_name"],
    "aws_db_subnet_group": lambda v: v["name"],
    "aws_rds_cluster": lambda v: v["cluster_identifier"],
    "aws_rds_cluster_instance": lambda v: v["identifier"],
    "aws_db_instance": lambda v: v["identifier"],
    "aws_elasticache_subnet_group": lambda v: v["name"],
    "aws_elasticache_replication_group": lambda v: v["replication_group_id"],
    "aws_opensearch_domain": lambda v: v["domain_name"],
}
EXISTS = re.compile(r"(?:already exists|AlreadyExists)[^\n]*? with ([\w.\[\]\"-]+),")


def adopt_orphans(driver: Any, error: str) -> list[str]:
    """``terraform import`` each named resource the failed apply found already existing;
    return their addresses (empty: nothing of that kind, the failure stands)."""
    addresses = list(dict.fromkeys(EXISTS.findall(error)))
    wanted = [a for a in addresses if a.split(".")[0] in IMPORT_IDS]
    if not wanted or len(wanted) != len(addresses):
        return []
    driver.plan()
    planned = json.loads(driver.capture("show", "-json", PLAN_FILE))
    after = {c["address"]: (c["change"].get("after") or {}) for c in planned["resource_changes"]}
    adopted = []
    for address in wanted:
        kind = address.split(".")[0]
        values = after.get(address)
        if not values:
            return adopted
        driver.run("import", address, IMPORT_IDS[kind](values), input=False, lock_timeout="60s")
        adopted.append(address)
    return adopted


class Interrupted(Exception):
    """Ctrl-C during a step: what was interrupted and how to continue."""

    def __init__(self, step: str, again: str) -> None:
        super().__init__(step)
        self.step, self.again = step, again

    def message(self) -> str:
        tail = " (terraform saved what it created in its state)" if self.step == "provision" else ""
        return f"interrupted during {self.step}{tail}; continue with `{self.again}`"


class LineReporter:
    """configure's Reporter on the step's line: plays and tasks as notes, failures kept."""

    def __init__(self, lines: StepLines) -> None:
        self.lines = lines
        self.play_name = ""

    def play(self, name: str) -> None:
        self.play_name = name
        self.lines.note(f"play {name}")

    def task(self, name: str) -> None:
        self.lines.note(f"{self.play_name}: {name}")

    def result(self, status: str, host: str, task: str, message: str = "") -> None:
        if status == "failed":
            self.lines.say(f"failed: {host}: {task}" + (f": {message}" if message else ""))

    def close(self) -> None:
        pass


def interactive_stdout() -> bool:
    return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
