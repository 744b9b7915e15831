"""`mmload load start|attach|fetch` take the run's flags as `mmload run` does: --duration is the
whole run on the coordinator too, --hold reaches the master, and the exit code follows the same
rules (--no-fail-on-slo for an SLO, never 0 for a failed or interrupted run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmload.cli import cli
from mmload.commands import remote
from mmload.commands.load import prepared_scenario
from mmload.config.scenario import RunOptions
from mmload.configure.inventory import DeploymentOutputs
from mmload.lifecycle.remote_load import master_argv, plan_load
from mmload.load.phases import before_hold_s
from tests.configure.conftest import OUTPUTS


@pytest.mark.parametrize("command", ["start", "attach", "fetch"])
def test_help_names_the_verdict_flags(command: str) -> None:
    result = CliRunner().invoke(cli, ["load", command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--no-fail-on-slo" in result.output


def test_start_help_says_duration_is_the_whole_run() -> None:
    text = CliRunner().invoke(cli, ["load", "start", "--help"]).output
    assert "WHOLE run" in text and "--hold" in text and "Hold time" not in text


def test_the_master_reads_duration_as_the_whole_run() -> None:
    """The coordinator prepares the scenario with the same function as a local run."""
    opts = RunOptions(target="http://127.0.0.1:1", scale=0.01, duration=40)
    scenario, _ = prepared_scenario("sev0-login-storm", opts)
    assert scenario.hold_s == pytest.approx(40 - before_hold_s(scenario))
    held = RunOptions(target="http://127.0.0.1:1", scale=0.01, hold=7)
    assert prepared_scenario("sev0-login-storm", held)[0].hold_s == 7


def test_hold_reaches_the_masters_command_line() -> None:
    plan = plan_load(DeploymentOutputs.model_validate(OUTPUTS))
    argv = master_argv(plan, "storm", {"hold": 30.0, "duration": None}, 2, "/r/runs")
    assert argv[argv.index("--hold") + 1] == "30.0" and "--duration" not in argv


def test_the_hard_caps_reach_the_masters_command_line() -> None:
    """--max-users and --max-rps (the --rate-cap it names) pass through to the master."""
    result = CliRunner().invoke(cli, ["load", "start", "--help"])
    assert "--max-users" in result.output and "--max-rps" in result.output
    assert {"max_users", "rate_cap"} <= set(remote.RUN_FLAGS)
    plan = plan_load(DeploymentOutputs.model_validate(OUTPUTS))
    argv = master_argv(plan, "storm", {"max_users": 40, "rate_cap": 25.0}, 2, "/r/runs")
    assert argv[argv.index("--max-users") + 1] == "40"
    assert argv[argv.index("--rate-cap") + 1] == "25.0"
    master = CliRunner().invoke(cli, ["load", "master", "--help"]).output
    assert "--max-users" in master and "--rate-cap" in master


def _record(tmp_path: Path, outcome: str, passed: bool) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    slo = {"name": "login_p99_ms", "threshold": 1000, "value": 2000 if not passed else 10}
    meta = {"outcome": outcome, "slos": [{**slo, "passed": passed}]}
    (run / "run.json").write_text(json.dumps(meta))
    return run


@pytest.mark.parametrize(
    ("outcome", "passed", "fail_on_slo", "code"),
    [
        ("completed", True, True, 0),
        ("completed", False, True, 1),
        ("completed", False, False, 0),
        ("failed", True, False, 1),
        ("interrupted", True, False, 130),
        ("aborted", True, False, 1),
    ],
)
def test_fetched_record_exit_code(
    tmp_path: Path, monkeypatch, outcome: str, passed: bool, fail_on_slo: bool, code: int
) -> None:
    run = _record(tmp_path, outcome, passed)
    import mmload.lifecycle.remote_load as remote_load

    monkeypatch.setattr(remote_load, "fetch_record", lambda *_: run)
    reached = type("Reached", (), {"workdir": tmp_path})()
    with pytest.raises(SystemExit) as exited:
        remote._fetch_and_judge(reached, object(), object(), fail_on_slo)
    assert exited.value.code == code
