"""The `up` pipeline's own logic with its steps replaced: the state file, resuming, --only,
Ctrl-C and failures inside a step, and the two progress styles. (The real steps against moto
and terraform: test_up_moto.py; preflight's checks: test_up_preflight.py.)"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from mmload.config.deployment import Deployment
from mmload.errors import RunFailed, UserError
from mmload.lifecycle.pipeline import STEPS, Interrupted, StepLines, Up, UpState, parse_steps

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")


class FakeUp(Up):
    """Up whose steps are functions the test gives."""

    behaviour: dict[str, Callable[[], str]]

    def step_functions(self) -> dict[str, Callable[[], str]]:
        return self.behaviour


def make(tmp_path: Path, behaviour=None, *, live: bool = False, yes: bool = True):
    out = io.StringIO()
    console = Console(file=out, force_terminal=live, width=120, highlight=False)
    dep = Deployment.model_validate(
        {"name": "mm-fake", "tier": 200, "operator_cidrs": ["203.0.113.7/32"]}
    )
    up = FakeUp(tmp_path / "deployment.yaml", dep, tmp_path / "work", StepLines(console, live))
    up.yes = yes
    ran: list[str] = []

    def ok(step: str) -> Callable[[], str]:
        def run() -> str:
            ran.append(step)
            up.lines.note("working")
            return f"{step} ok"

        return run

    up.behaviour = {s: ok(s) for s in STEPS} | (behaviour or {})
    return up, out, ran


def test_steps_are_parsed_in_pipeline_order() -> None:
    assert parse_steps(()) == list(STEPS)
    assert parse_steps(("provision,preflight",)) == ["preflight", "provision"]
    assert parse_steps(("seed", "configure")) == ["configure", "seed"]
    with pytest.raises(UserError) as err:
        parse_steps(("preflight,apply",))
    assert err.value.field == "--only" and "unknown step 'apply'" in err.value.message


def test_finished_steps_are_recorded_and_skipped_on_the_next_run(tmp_path: Path) -> None:
    up, out, ran = make(tmp_path)
    assert up.run(["preflight", "provision"], "again") == ["preflight", "provision"]
    state = json.loads((tmp_path / "work" / "up-state.json").read_text())
    assert list(state["finished"]) == ["preflight", "provision"] and state["stopped"] is None
    lines = out.getvalue().splitlines()
    assert all(STAMP.match(ln) for ln in lines), lines  # plain, timestamped lines
    assert any(ln.endswith("provision: working") for ln in lines)
    assert any(re.search(r"provision: done in \d+ s: provision ok$", ln) for ln in lines)

    up, out, ran = make(tmp_path)
    assert up.run(list(STEPS), "again") == ["configure", "seed"]
    assert ran == ["configure", "seed"]
    assert "resuming: already done: preflight (finished " in out.getvalue()
    assert "continuing with configure" in out.getvalue()

    up, out, ran = make(tmp_path)
    assert up.run(list(STEPS), "again") == [] and ran == []
    assert "nothing left to do" in out.getvalue()
    UpState.load(tmp_path / "work").forget()
    assert not (tmp_path / "work" / "up-state.json").exists()


def test_ctrl_c_inside_a_step_is_recorded_and_says_how_to_continue(tmp_path: Path) -> None:
    def interrupted() -> str:
        raise KeyboardInterrupt

    up, out, ran = make(tmp_path, {"provision": interrupted})
    with pytest.raises(Interrupted) as stop:
        up.run(list(STEPS), "mmload up -c d.yaml")
    assert stop.value.step == "provision" and ran == ["preflight"]
    assert stop.value.message() == (
        "interrupted during provision (terraform saved what it created in its state); "
        "continue with `mmload up -c d.yaml`"
    )
    state = UpState.load(tmp_path / "work")
    assert list(state.finished) == ["preflight"] and state.stopped["step"] == "provision"

    up, out, ran = make(tmp_path)
    assert up.run(list(STEPS), "again") == ["provision", "configure", "seed"]
    assert "the last `up` stopped in provision at " in out.getvalue()
    assert UpState.load(tmp_path / "work").stopped is None


def test_a_failed_step_stops_the_pipeline_and_is_recorded(tmp_path: Path) -> None:
    def fails() -> str:
        raise RunFailed("configure failed: app-0: install: no space")

    up, _, ran = make(tmp_path, {"configure": fails})
    with pytest.raises(RunFailed) as err:
        up.run(list(STEPS), "mmload up -c d.yaml")
    assert ran == ["preflight", "provision"]
    assert "no space" in str(err.value)
    assert "configure failed; fix the cause and continue with `mmload up -c d.yaml`" in str(
        err.value
    )
    assert UpState.load(tmp_path / "work").stopped["why"] == "failed"


def test_provision_needs_yes_without_a_terminal(tmp_path: Path) -> None:
    up, _, ran = make(tmp_path, yes=False)
    with pytest.raises(UserError) as err:
        up.run(["preflight", "provision"], "again")
    assert err.value.field == "--yes" and ran == []  # refused before any step ran
    up, _, ran = make(tmp_path, yes=False)
    assert up.run(["preflight"], "again") == ["preflight"]  # no plan applied: no question


def test_a_bad_state_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "up-state.json").write_text("[1, 2]")
    with pytest.raises(UserError) as err:
        UpState.load(tmp_path / "work")
    assert "up-state.json" in str(err.value) and "delete it" in str(err.value)


def test_on_a_terminal_each_step_has_one_live_line(tmp_path: Path) -> None:
    up, out, _ = make(tmp_path, live=True)
    up.run(["preflight", "provision"], "again")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    final = [ln for ln in text.splitlines() if "done in" in ln]
    assert any("preflight: done in" in ln for ln in final)
    assert any("provision: done in" in ln for ln in final)
    assert not STAMP.match(text.strip().splitlines()[-1])  # the live display, not plain lines


def test_status_lines_cost_accrued_and_time_left() -> None:
    from datetime import UTC, datetime, timedelta

    from mmload.lifecycle.status import Status, Tagged

    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    tags = {"mmload:deployment": "mm-fake", "mmload:expires-at": "2026-12-02T15:30:00Z"}
    found = [
        Tagged("arn:aws:ec2:us-east-1:1:instance/i-1", tags),
        Tagged("arn:aws:ec2:us-east-1:1:instance/i-2", tags),
        Tagged("arn:aws:rds:us-east-1:1:cluster:mm-fake-db", tags),
        Tagged("arn:aws:s3:::mm-fake-files-1", tags),
    ]
    status = Status(
        "mm-fake",
        found,
        since=now - timedelta(hours=2),
        expires_at=now + timedelta(hours=3, minutes=30),
        hourly=1.5,
        now=now,
    )
    assert status.lines() == [
        "mm-fake: 4 tagged resources (2 ec2:instance, 1 rds:cluster, 1 s3:bucket)",
        "since 2026-12-02T10:00:00Z (2 h 00 min ago)",
        "cost $1.50/h, about $3.00 accrued (on-demand compute only)",
        "ttl: expires at 2026-12-02T15:30:00Z, 3 h 30 min left (`mmload sweep` removes it after)",
    ]
    assert found[2].resource_id == "mm-fake-db" and found[3].resource_id == "mm-fake-files-1"
    gone = Status("mm-fake", [], None, None, 0.0, now)
    assert gone.lines() == ["mm-fake: nothing tagged mmload:deployment=mm-fake exists"]


def test_configure_and_seed_steps_hand_configure_what_it_needs(tmp_path, monkeypatch) -> None:
    """The seams up -> configure (every role) and up -> seed (the population's JSONL, imported
    with the seed tag); configure itself runs against real SSH hosts in tests/configure."""
    import mmload.configure.run as run_module
    from mmload.configure.driver import PlaybookResult

    calls: list[dict] = []

    def fake_configure(config, **kw):
        calls.append({"config": config, **kw})
        return PlaybookResult(status="successful", rc=0, stats={"processed": {"a": 1, "b": 1}})

    monkeypatch.setattr(run_module, "configure", fake_configure)
    dep = Deployment.model_validate(
        {
            "name": "mm-fake",
            "tier": 200,
            "operator_cidrs": ["203.0.113.7/32"],
            "load": {"target_users": 30},
        }
    )
    lines = StepLines(Console(file=io.StringIO(), width=120), False)
    up = Up(tmp_path / "deployment.yaml", dep, tmp_path / "work", lines, yes=True)
    assert up.configure() == "2 hosts, 0 changes"
    assert calls[0]["tags"] == [] and calls[0]["skip_tags"] == [] and "seed_file" not in calls[0]
    assert calls[0]["notice"] == lines.say
    assert up.seed() == "30 users imported"
    seed = calls[1]
    assert (
        seed["tags"] == ["seed"]
        and seed["seed_file"] == tmp_path / "work" / "seed" / "population.jsonl"
    )
    rows = [json.loads(ln) for ln in seed["seed_file"].read_text().splitlines()]
    assert sum(1 for r in rows if r.get("type") == "user") == 30


def test_seed_imports_nothing_into_an_existing_server(tmp_path, monkeypatch) -> None:
    """An agents-only deployment (target:) has no app node to import into, and the customer's
    server its own users: the seed step runs no playbook and writes no population."""
    import mmload.configure.run as run_module

    calls: list[object] = []
    monkeypatch.setattr(run_module, "configure", lambda *a, **kw: calls.append(kw))
    dep = Deployment.model_validate(
        {
            "name": "mm-ext",
            "tier": 200,
            "operator_cidrs": ["203.0.113.7/32"],
            "target": {"url": "https://chat.example.com"},
        }
    )
    lines = StepLines(Console(file=io.StringIO(), width=120), False)
    up = Up(tmp_path / "deployment.yaml", dep, tmp_path / "work", lines, yes=True)
    assert up.seed() == "nothing to import: the target https://chat.example.com has its own users"
    assert calls == [] and not (tmp_path / "work" / "seed").exists()
