"""`mmload target check` (issue 15, item 3) against real `mmload sim` processes: the v11.5
profile (rate limiting on) and the fast one (off), each with a system admin's token in a file.
The CLI runs as a user runs it; what it reports comes from the simulator's own answers."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests

from mmload.config.scenario import Scenario
from mmload.load.storm_check import Storm, has_login_limiter, settings_findings, storm_of
from mmload.load.target import TargetFacts
from mmload.sim.launcher import SimProcess, running_sim
from tests.conftest import MMLOAD
from tests.load.conftest import run_mmload

pytestmark = pytest.mark.slow

TOKEN = "adm1n-t0ken-not-to-be-echoed-7f3a"


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("token") / "admin.token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def v115(token_file: Path) -> Iterator[SimProcess]:
    with running_sim(users=20, profile="v11.5", admin_token_file=str(token_file)) as s:
        yield s


@pytest.fixture(scope="module")
def fast(token_file: Path) -> Iterator[SimProcess]:
    with running_sim(users=20, profile="fast", admin_token_file=str(token_file)) as s:
        yield s


def check(url: str, *args: str) -> tuple[int, str, str]:
    res = run_mmload("target", "check", "--target", url, *args, timeout=60)
    assert "Traceback" not in res.stderr, res.stderr
    assert TOKEN not in res.stdout + res.stderr
    return res.returncode, res.stdout, res.stderr


def test_v11_5_reports_the_login_limiter_and_the_source_addresses_a_storm_needs(
    v115: SimProcess, token_file: Path
) -> None:
    """The sev0 storm (15,000 logins in 15 min = 16.7/s) against 5 logins/s per source address:
    at least 4 addresses; exit 1 because the storm would measure the limiter."""
    code, out, err = check(v115.url, "--admin-token-file", str(token_file))
    assert code == 1, out + err
    assert "server: 11.5.0 build dev (X-Version-Id 11.5.0.dev." in out
    assert "ping OK (database OK, filestore OK)" in out and "TLS: not used (http)" in out
    assert "license: none" in out
    warning = next(line for line in out.splitlines() if "login rate limiter on" in line)
    assert warning.startswith("warning: ")
    assert "keyed by remote address: 5 logins/s per source IP" in warning
    assert "15,000 logins in 15 min (16.7/s at its peak) needs ≥ 4 source addresses" in warning
    assert "warning: global rate limiter on, keyed by client address (the peer)" in out
    assert "10 requests/s per address (burst 100)" in out
    assert "note: SqlSettings.MaxOpenConns 300" in out and "note: cluster: off" in out
    assert err.strip().splitlines() == [
        "mmload: error: 2 warning(s) above: the storm as planned would not measure the server"
    ]
    # the token never reached the simulator's log either
    assert all(TOKEN not in line for line in v115.output)


def test_the_source_addresses_needed_follow_the_scenario(
    v115: SimProcess, token_file: Path, tmp_path: Path
) -> None:
    """A slower storm (600 logins in 60 s = 10/s) needs 2 addresses, not 4."""
    scenario = tmp_path / "slow.yaml"
    scenario.write_text("name: slow\nkind: storm\nusers: 600\narrival_s: 60\nhold_s: 10\n")
    code, out, _ = check(
        v115.url, "--admin-token-file", str(token_file), "--scenario", str(scenario)
    )
    assert code == 1
    assert "600 logins in 60 s (10.0/s at its peak) needs ≥ 2 source addresses" in out


def test_without_a_token_the_rate_limit_headers_still_give_it_away(v115: SimProcess) -> None:
    code, out, _ = check(v115.url)
    assert code == 1
    assert "warning: rate limiting is on (the ping answered X-RateLimit-Limit 101)" in out
    assert "needs ≥ 4 source addresses" in out
    assert "note: settings not read: no --admin-token-file" in out


def test_no_limiter_nothing_blocking(fast: SimProcess, token_file: Path) -> None:
    code, out, err = check(fast.url, "--admin-token-file", str(token_file))
    assert code == 0, out + err
    assert "note: rate limiting off (RateLimitSettings.Enable false)" in out
    assert out.rstrip().endswith("nothing blocking")


def test_a_token_the_server_refuses_is_bad_input_naming_the_flag(
    fast: SimProcess, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-the-admin-token\n")
    code, out, err = check(fast.url, "--admin-token-file", str(wrong))
    assert code == 2
    assert err.strip().splitlines() == [
        "mmload: error: --admin-token-file: the server refused the token "
        "(HTTP 401 api.context.session_expired.app_error): it must be a system admin's token"
    ]
    assert "not-the-admin-token" not in out + err


def test_a_user_session_is_not_an_admin(fast: SimProcess) -> None:
    """The simulator's side: a user's token gets 403 on GET /api/v4/config, none gets 401."""
    login = requests.post(
        fast.url + "/api/v4/users/login",
        json={"login_id": "user-1", "password": "Loadtest-1!"},
        timeout=10,
    )
    user = {"Authorization": "Bearer " + login.headers["Token"]}
    for path in ("/api/v4/config", "/api/v4/cluster/status"):
        assert requests.get(fast.url + path, headers=user, timeout=10).status_code == 403
        assert requests.get(fast.url + path, timeout=10).status_code == 401
    admin = {"Authorization": "Bearer " + TOKEN}
    cfg = requests.get(fast.url + "/api/v4/config", headers=admin, timeout=10).json()
    assert cfg["RateLimitSettings"]["Enable"] is False
    assert requests.get(fast.url + "/api/v4/cluster/status", headers=admin, timeout=10).json() == []


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--target", "ftp://x"], "mmload: error: command line: --target: "),
        (
            ["--target", "http://127.0.0.1:9", "--admin-token-file", "/nonexistent"],
            "--admin-token-file: file not found",
        ),
        (["--target", "http://127.0.0.1:9", "--scale", "0"], "--scale: "),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(args: list[str], line: str) -> None:
    res = run_mmload("target", "check", *args, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and line in res.stderr


def test_an_unreachable_target_is_one_line_and_exit_1() -> None:
    res = run_mmload("target", "check", "--target", "http://127.0.0.1:9", timeout=60)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        "mmload: error: target http://127.0.0.1:9 is unreachable: [Errno 111] Connection refused"
    ]


def test_versions_with_the_login_limiter() -> None:
    """Added in 11.5.0, backported to 11.4.1, 11.3.2, 11.2.4 and 10.11.12 (the facts file)."""
    with_it = ["11.5.0", "11.9.1", "11.4.1", "11.3.2", "11.2.4", "10.11.12", "12.0.0", None]
    without = ["11.4.0", "11.3.1", "11.2.3", "10.11.11", "11.1.0", "11.0.5", "10.2.0"]
    assert all(has_login_limiter(v) for v in with_it)
    assert not any(has_login_limiter(v) for v in without)


def test_sessions_shorter_than_the_run_block_it() -> None:
    storm = storm_of(Scenario(name="s", kind="storm", users=100, arrival_s=3600, hold_s=3600))
    assert storm == Storm("s", 100, 3600, pytest.approx(0.1, abs=0.01), 7200)
    cfg = {"ServiceSettings": {"SessionLengthWebInHours": 1}}
    found = settings_findings(cfg, TargetFacts("http://x"), storm)
    blocking = [f.text for f in found if f.blocking]
    assert blocking == [
        "web sessions last 1 h (SessionLengthWebInHours) but the run lasts 2 h: "
        "users are logged out during it"
    ]


class _MattermostLike(BaseHTTPRequestHandler):
    """Just the unauthenticated answers `target check` reads, and a note of every
    Authorization header it was sent."""

    protocol_version = "HTTP/1.1"
    server: Any
    ANSWERS: ClassVar[dict[str, dict[str, str]]] = {
        "/api/v4/system/ping": {"status": "OK", "database_status": "OK"},
        "/api/v4/config/client": {"Version": "11.9.0", "BuildNumber": "42"},
        "/api/v4/license/client": {"IsLicensed": "true", "SkuShortName": "enterprise"},
    }

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.authorizations.append(self.headers.get("Authorization"))
        body = self.ANSWERS.get(self.path.split("?", 1)[0])
        data = json.dumps(body or {"id": "api.context.404.app_error"}).encode()
        self.send_response(200 if body else 404)
        self.send_header("X-Version-Id", "11.9.0.42.abc.true")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def tls_target(tmp_path: Path) -> Iterator[tuple[str, str, ThreadingHTTPServer]]:
    """An HTTPS server on 127.0.0.1 whose certificate (mmload's own CA) names ``localhost``."""
    from mmload.configure.tls import generated_tls

    tls = generated_tls(tmp_path, "target-check", ["localhost"])
    (tmp_path / "key.pem").write_text(tls.key_pem)
    (tmp_path / "cert.pem").write_text(tls.cert_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MattermostLike)
    server.authorizations = []  # type: ignore[attr-defined]
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}", str(tls.ca_file), server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def check_env(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "MMLOAD_CA_FILE"}
    return subprocess.run(
        [MMLOAD, "target", "check", *args], capture_output=True, text=True, timeout=60,
        env={**clean, **env},
    )  # fmt: skip


def test_tls_verified_with_the_ca_given(
    tls_target: tuple[str, str, ThreadingHTTPServer],
) -> None:
    url, ca, _server = tls_target
    res = check_env({"MMLOAD_CA_FILE": ca}, "--target", url)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "  TLS: certificate verified" in res.stdout
    assert "server: 11.9.0 build 42 (X-Version-Id 11.9.0.42.abc.true)" in res.stdout
    assert "license: enterprise" in res.stdout


def test_an_unverified_certificate_blocks_and_gets_no_token(
    tls_target: tuple[str, str, ThreadingHTTPServer], token_file: Path
) -> None:
    """Without its CA the certificate does not verify: a blocking warning in words, the rest
    still read, and the admin token is never sent over that connection."""
    url, _ca, server = tls_target
    res = check_env({}, "--target", url, "--admin-token-file", str(token_file))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "warning: TLS certificate NOT verified: " in res.stdout
    assert "every user of the run verifies it and would fail" in res.stdout
    assert "server: 11.9.0 build 42" in res.stdout
    assert "note: settings not read: the token is not sent over unverified TLS" in res.stdout
    assert server.authorizations and not any(server.authorizations)  # type: ignore[attr-defined]
