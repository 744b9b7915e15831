"""Scenario files and flags: --scale scales users and time, bad input: exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmload.config.scenario import RunOptions, Scenario, apply_options, load_scenario
from mmload.errors import UserError
from mmload.load.phases import expected_s, with_total_duration
from tests.load.conftest import run_mmload, write_scenario

BUILTINS = ["sev0-login-storm", "sev0-reconnect-herd", "ceiling", "steady"]


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_scenarios_validate(name: str) -> None:
    scenario, path = load_scenario(name)
    assert scenario.name == name == path.stem


def test_sev0_storm_is_15000_users_in_15_minutes_and_scale_shrinks_both() -> None:
    storm, _ = load_scenario("sev0-login-storm")
    assert (storm.kind, storm.users, storm.arrival_s) == ("storm", 15_000, 900)
    scaled = apply_options(storm, RunOptions(target="http://127.0.0.1:1", scale=0.1))
    assert (scaled.users, scaled.arrival_s) == (1_500, 90)
    assert scaled.hold_s == pytest.approx(storm.hold_s * 0.1)
    explicit = apply_options(
        storm, RunOptions(target="http://127.0.0.1:1", scale=0.1, users=7, hold=3)
    )
    assert (explicit.users, explicit.arrival_s, explicit.hold_s) == (7, 90, 3)


def test_duration_is_the_whole_run_and_hold_gets_the_rest() -> None:
    storm = apply_options(
        load_scenario("sev0-login-storm")[0], RunOptions(target="http://127.0.0.1:1", scale=0.1)
    )
    timed = with_total_duration(storm, 120)
    assert (timed.arrival_s, timed.hold_s) == (90, 30) and expected_s(timed) == 120
    herd = load_scenario("sev0-reconnect-herd")[0].scaled(0.01)
    timed = with_total_duration(herd, 100)
    assert expected_s(timed) == pytest.approx(100) and timed.hold_s < 100 - herd.arrival_s
    with pytest.raises(UserError, match=r"--duration: 20 s is shorter than the storm's phases"):
        with_total_duration(storm, 20)
    ceiling = with_total_duration(load_scenario("ceiling")[0], 300)
    assert ceiling.ceiling.max_duration_s == 300
    with pytest.raises(ValueError, match="not both"):
        RunOptions(target="http://127.0.0.1:1", duration=10, hold=3)


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("http://127.0.0.1:8065/", "http://127.0.0.1:8065"),
        ("http://127.0.0.1:8065//", "http://127.0.0.1:8065"),
        ("https://mm.example.com/mattermost/", "https://mm.example.com/mattermost"),
        ("https://mm.example.com//mattermost", "https://mm.example.com/mattermost"),
        ("http://[::1]:8065", "http://[::1]:8065"),
    ],
)
def test_target_is_normalised(given: str, normal: str) -> None:
    assert RunOptions(target=given).target == normal


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("http://u:secret@127.0.0.1", "credentials"),
        ("http://127.0.0.1/?x=1", "query or fragment"),
        ("http://127.0.0.1/#top", "query or fragment"),
        ("http://127.0.0.1:99999", "invalid port"),
        ("http://127.0.0.1:8065/api/v4/", "leave out /api/v4"),
        ("ftp://127.0.0.1", "pattern"),
    ],
)
def test_bad_target_is_refused_naming_the_flag(given: str, why: str) -> None:
    res = run_mmload("run", "steady", "--target", given) if why == "credentials" else None
    if res is not None:  # one end-to-end: exit 2, one line, no secret echoed
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "--target" in res.stderr and "secret" not in res.stderr
    with pytest.raises(ValueError, match=why):
        RunOptions(target=given)


def test_slo_defaults_are_mattermosts() -> None:
    ceiling, _ = load_scenario("ceiling")
    s = ceiling.slos
    assert (s.p99_ms, s.avg_ms, s.http_5xx_rate, s.cpu_percent) == (2000, 100, 0.00025, 85)


def test_unknown_or_unimplemented_action_weight_is_rejected(tmp_path: Path) -> None:
    f = write_scenario(tmp_path / "s.yaml", name="x", kind="steady", action_weights={"Nope": 1})
    with pytest.raises(UserError, match=r"action_weights: .*unknown action 'Nope'"):
        load_scenario(str(f))
    f = write_scenario(
        tmp_path / "s.yaml", name="x", kind="steady", action_weights={"JoinChannel": 1}
    )
    with pytest.raises(UserError, match="not implemented"):
        load_scenario(str(f))


def test_custom_locustfile_must_exist(tmp_path: Path) -> None:
    f = write_scenario(tmp_path / "s.yaml", name="x", kind="steady", locustfile="nope.py")
    with pytest.raises(UserError, match="locustfile: locustfile not found"):
        load_scenario(str(f))
    (tmp_path / "lf.py").write_text("from mmload.load.user import MattermostUser\n")
    f = write_scenario(tmp_path / "s.yaml", name="x", kind="steady", locustfile="lf.py")
    scenario, _ = load_scenario(str(f))
    assert Path(scenario.locustfile or "") == (tmp_path / "lf.py").resolve()


def test_idle_rule_needs_avg_above_min() -> None:
    with pytest.raises(ValueError, match="avg_ms must be greater"):
        Scenario.model_validate({"name": "x", "kind": "steady", "idle": {"min_ms": 5, "avg_ms": 5}})


def _one_line_exit_2(out, *needles: str) -> None:
    assert out.returncode == 2, out.stderr + out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_bad_scenario_file_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    f = write_scenario(tmp_path / "bad.yaml", name="bad", kind="storm", users=-5)
    out = run_mmload("run", str(f), "--target", "http://127.0.0.1:9")
    _one_line_exit_2(out, str(f), "users", "must be between 1 and 1,000,000")
    f = write_scenario(tmp_path / "typo.yaml", name="t", kind="storm", hold=3)
    _one_line_exit_2(run_mmload("run", str(f), "--target", "http://127.0.0.1:9"), "hold", "unknown")
    f.write_text("name: [oops\n")
    _one_line_exit_2(run_mmload("run", str(f), "--target", "http://127.0.0.1:9"), "invalid YAML")
    _one_line_exit_2(
        run_mmload("run", "no-such-scenario", "--target", "http://127.0.0.1:9"),
        "no-such-scenario",
        "built-in: ",
    )


def test_bad_flags_exit_2() -> None:
    _one_line_exit_2(
        run_mmload("run", "steady", "--target", "http://127.0.0.1:9", "--scale", "0"),
        "scale",
        "at least 0.001",
    )
    _one_line_exit_2(run_mmload("run", "steady", "--target", "ftp://x", "--scale", "1"), "target")
    _one_line_exit_2(
        run_mmload("run", "steady", "--target", "http://127.0.0.1:9", "--workers", "-1"), "workers"
    )
    _one_line_exit_2(run_mmload("run", "steady"), "--target")


def test_non_loopback_target_needs_yes_when_not_interactive() -> None:
    out = run_mmload("run", "steady", "--target", "http://192.0.2.10:8065")
    _one_line_exit_2(out, "--target", "not a loopback", "--yes")


def test_unreachable_target_fails_with_exit_1(tmp_path: Path) -> None:
    out = run_mmload(
        "run", "steady", "--target", "http://127.0.0.1:9", "--users", "1", "--out", str(tmp_path)
    )
    assert out.returncode == 1, out.stderr
    assert "did not answer" in out.stderr and "Traceback" not in out.stderr
