"""`mmload sim` and `mmload seed` as a user runs them: URL when ready, SIGTERM, bad input."""

from __future__ import annotations

import json
import urllib.request

import pytest

from mmload.cli import main
from mmload.sim.launcher import running_sim
from tests.conftest import run_cli


def test_sim_prints_url_serves_and_stops_on_sigterm() -> None:
    with running_sim(users=50, teams=1) as sim:
        with urllib.request.urlopen(sim.url + "/api/v4/system/ping", timeout=5) as resp:
            assert resp.status == 200
            assert json.load(resp)["status"] == "OK"
        with urllib.request.urlopen(sim.metrics_url, timeout=5) as resp:
            assert b"mattermost_http_requests_total 1.0" in resp.read()
        code = sim.stop()
    assert code == 0
    assert sim.output[-1] == "mmload sim stopped"
    assert "50 users" in "\n".join(sim.output)


BAD_FLAGS = [
    (["sim", "--users", "0"], "command line: --users: Input should be greater than"),
    (["sim", "--users", "many"], "'--users': 'many' is not a valid integer"),
    (["sim", "--profile", "v9"], "'--profile': 'v9' is not one of"),
    (["sim", "--port", "70000"], "--port: Input should be less than or equal to 65535"),
    (["sim", "--password", "short"], "--password: String should have at least 8 characters"),
    (["sim", "--ws-auth-timeout", "0"], "--ws-auth-timeout: must be a finite number at least 0.01"),
    (["sim", "--profile-file", "/nonexistent.yaml"], "/nonexistent.yaml: file not found"),
    (["seed", "--teams", "0"], "command line: --teams: Input should be greater than"),
    (["seed", "--out", "/no/such/dir/x.jsonl"], "--out: directory does not exist"),
]


@pytest.mark.parametrize(("args", "expected"), BAD_FLAGS[:1] + BAD_FLAGS[-1:])
def test_bad_flags_exit_2_with_one_line_from_the_console_script(
    args: list[str], expected: str
) -> None:
    proc = run_cli(*args, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0]


@pytest.mark.parametrize(("args", "expected"), BAD_FLAGS)
def test_bad_flags_exit_2_with_one_line(args: list[str], expected: str, capsys) -> None:
    # The same entry point in-process (mmload.cli.main), to keep the suite fast.
    with pytest.raises(SystemExit) as info:
        main(args)
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mmload: error: ") and expected in lines[0]
    assert "Traceback" not in err


def test_bad_profile_file_names_file_and_field(tmp_path) -> None:
    bad = tmp_path / "mine.yaml"
    bad.write_text("extends: v11.9\nlogin_rate_limit:\n  per_sec: -1\n")
    proc = run_cli("sim", "--profile-file", str(bad), timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"mmload: error: {bad}: login_rate_limit.per_sec: "
        "must be a finite number above 0 and at most 100,000 (got -1)"
    )
    typo = tmp_path / "typo.yaml"
    typo.write_text("pasword_hash: bcrypt\n")
    proc = run_cli("sim", "--profile-file", str(typo), timeout=60)
    assert proc.returncode == 2
    assert "pasword_hash: unknown field" in proc.stderr


def test_port_in_use_is_a_user_error() -> None:
    with running_sim(users=10, teams=1) as sim:
        port = sim.url.rsplit(":", 1)[1]
        proc = run_cli("sim", "--port", port, "--metrics-port", "0", timeout=60)
    assert proc.returncode == 2
    assert f"--port: cannot listen on 127.0.0.1:{port}" in proc.stderr.strip()


def test_profile_file_composes_on_a_named_profile(tmp_path) -> None:
    from mmload.commands.sim import load_profile
    from mmload.config.sim import NAMED_PROFILES, WorkerPool
    from mmload.errors import UserError

    f = tmp_path / "node.yaml"
    f.write_text("extends: v11.9\nworker_pool: {size: 6, service_ms: 20}\n")
    name, profile = load_profile(None, str(f))
    assert name == "node"
    assert profile.password_hash == "pbkdf2" and profile.login_rate_limit is not None
    assert profile.worker_pool == WorkerPool(size=6, service_ms=20)
    plain = tmp_path / "plain.yaml"
    plain.write_text("login_mutex: true\n")
    _, from_flag = load_profile("v10.11", str(plain))  # --profile is the base without extends
    assert from_flag.password_hash == "bcrypt" and from_flag.login_mutex
    _, alone = load_profile(None, str(plain))
    assert alone.password_hash == "none" and alone.login_mutex
    assert load_profile("v11.5", None)[1] == NAMED_PROFILES["v11.5"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: v99\n")
    with pytest.raises(UserError, match="extends: unknown profile 'v99'"):
        load_profile(None, str(bad))


def test_no_metrics_serves_no_metrics_listener() -> None:
    """--no-metrics used to fall back to :8067 (the None was dropped with the unset flags)."""
    with running_sim(users=20, teams=1, metrics_port=None, no_metrics=True) as sim:
        assert sim.metrics_url is None
        assert any("(metrics disabled)" in line for line in sim.output)
        with urllib.request.urlopen(sim.url + "/api/v4/system/ping", timeout=5) as resp:
            assert resp.status == 200
