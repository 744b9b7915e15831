"""Verdicts and exit codes of `mmload run` against real targets on 127.0.0.1.

A storm whose logins fail exits 1 naming the SLO; a target given with a trailing slash runs as
without it; a target that answers nothing ends ``failed`` (exit 1, the first error in run.json);
a `--prometheus` that is not a Prometheus fails before anything starts (exit 2). The targets are
`mmload sim` (the rate-limited one with its `v10.11-ratelimit` profile) and, for the silent and
the half-broken target, tiny HTTP servers in this process. Runs are a few users, a few seconds.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mmload import record
from mmload.errors import UserError
from mmload.load.pin import PROBE_USER_AGENT
from mmload.load.preflight import probe_license
from mmload.load.prom import check_prometheus
from mmload.net import free_port
from mmload.sim.launcher import running_sim
from tests.load.conftest import run_dir_from, run_mmload, write_scenario

pytestmark = pytest.mark.slow

STORM = {
    "name": "verdict-storm",
    "kind": "storm",
    "users": 12,
    "arrival_s": 1,
    "hold_s": 0,
    "actions": False,
    "websocket": {"enabled": False},
    "request_timeout_s": 10,  # a busy machine must not turn a slow answer into a failure
    "slos": {"login_p99_ms": 2000, "login_success_rate": 0.99, "error_rate": 0.01, "avg_ms": None},
}


def _storm(tmp: Path, **extra: object) -> Path:
    return write_scenario(tmp / "storm.yaml", **{**STORM, **extra})


def _run(tmp: Path, scenario: Path, target: str, *flags: str):
    return run_mmload("run", str(scenario), "--target", target, "--out", str(tmp / "runs"), *flags)


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *_: object) -> None:
        pass

    def _json(self, doc: object) -> None:
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ProbeOnly(_Quiet):
    """Answers the engine's probe (urllib) like Mattermost, then hangs up on every other
    request (the users')."""

    def do_GET(self) -> None:
        probe = self.headers.get("User-Agent", "") == PROBE_USER_AGENT
        if probe and self.path.startswith("/api/v4/config/client"):
            self._json({"Version": "11.7.0", "BuildNumber": "1"})
        else:
            self.close_connection = True  # no answer: the client sees the connection drop

    do_POST = do_GET


class FakePrometheus(_Quiet):
    """Answers /api/v1/query as Prometheus' HTTP API does (``status``, ``data.resultType``)."""

    def do_GET(self) -> None:
        if self.path.startswith("/api/v1/query"):
            self._json({"status": "success", "data": {"resultType": "vector", "result": []}})
        else:
            self.send_error(404)


def test_wrong_password_storm_fails_naming_login_success_rate(sim: str, tmp_path: Path) -> None:
    res = _run(tmp_path, _storm(tmp_path, population={"password": "not-the-password"}), sim)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    (line,) = [ln for ln in res.stderr.splitlines() if ln.startswith("mmload: error: FAIL")]
    assert "login_success_rate failed: measured 0" in line and "401/403" in line
    assert "login_p99_ms" in line and "could not be measured" in line  # no successful login
    meta = record.read_meta(run_dir_from(res.stdout))
    assert meta.outcome == "completed" and record.run_verdict(meta).status == "FAIL"
    by = {v.name: v for v in meta.slos}
    assert by["login_success_rate"].value == 0 and by["login_success_rate"].status == "fail"
    assert by["login_p99_ms"].status == "unmeasured"
    assert meta.totals["errors_by_class"] == {"auth": 12}
    assert "verdict: FAIL" in res.stdout
    assert "login_success_rate (client): 0 >= 0.99: FAIL [failed logins: 12 401/403]" in res.stdout
    # the same record gates `report --fail-on-slo` the same way (and --no-fail-on-slo opts out)
    rep = run_mmload("report", str(run_dir_from(res.stdout)), "--fail-on-slo")
    assert rep.returncode == 1 and "login_success_rate" in rep.stderr, rep.stderr


def test_rate_limited_storm_fails_naming_the_429s(tmp_path: Path) -> None:
    with running_sim(users=100, profile="v10.11-ratelimit", log_path=tmp_path / "sim.log") as s:
        res = _run(tmp_path, _storm(tmp_path, users=20, arrival_s=1), s.url)
    assert res.returncode == 1, res.stdout + res.stderr
    (line,) = [ln for ln in res.stderr.splitlines() if ln.startswith("mmload: error: FAIL")]
    assert "login_success_rate failed" in line and "429 rate-limited" in line, line
    meta = record.read_meta(run_dir_from(res.stdout))
    assert meta.licensed is False  # the profile has no licence (license/client says so)
    by = {v.name: v for v in meta.slos}
    assert 0 < (by["login_success_rate"].value or 0) < 0.99
    assert meta.totals["errors_by_class"]["rate_limited"] > 0
    # login p99 is over the successful logins only: as many samples as logins answered 200
    df = record.read_table(meta_dir := run_dir_from(res.stdout), "requests").to_pandas()
    login = df[df["name"] == "POST /api/v4/users/login"]
    ok = login[(login["status"] == 200) & login["error"].isna()]
    assert by["login_p99_ms"].detail == f"{len(ok)} successful of {len(login)}", meta_dir
    assert by["login_p99_ms"].value is not None and by["login_p99_ms"].value >= ok.latency_ms.max()


def test_trailing_slash_target_runs_like_without(sim: str, tmp_path: Path) -> None:
    res = _run(tmp_path, _storm(tmp_path, users=5), sim + "/", "--no-fail-on-slo")
    assert res.returncode == 0, res.stdout + res.stderr
    meta = record.read_meta(run_dir_from(res.stdout))
    assert meta.target == sim and meta.outcome == "completed"
    assert meta.licensed is False  # the simulator's default profile has no licence
    assert meta.totals["arrivals"]["loaded"] == 5 and meta.totals["failures"] == 0
    assert record.run_verdict(meta).status == "PASS" and "verdict: PASS" in res.stdout


def _silent_socket() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)  # accepts connections (the kernel's backlog) and never answers
    return s


@pytest.mark.parametrize("kind", ["closed-port", "never-replies", "probe-only"])
def test_target_that_answers_nothing_ends_failed(sim: str, tmp_path: Path, kind: str) -> None:
    scenario = _storm(tmp_path, users=3, request_timeout_s=1)
    if kind == "closed-port":
        res = _run(tmp_path, scenario, f"http://127.0.0.1:{free_port()}")
    elif kind == "never-replies":
        with _silent_socket() as s:
            res = _run(tmp_path, scenario, f"http://127.0.0.1:{s.getsockname()[1]}")
    else:
        with http_server(ProbeOnly) as url:
            res = _run(tmp_path, scenario, url)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    meta = record.read_meta(run_dir_from(res.stdout))
    assert meta.outcome == "failed" and meta.error
    if kind == "probe-only":  # the run went ahead: nothing but the probe was answered
        assert "no request was answered" in meta.error and "GET /api/v4/" in meta.error
        assert meta.totals["requests"] > 0 and meta.totals["answered"] == 0
    else:
        assert "did not answer" in meta.error and meta.totals["requests"] == 0
    if kind != "never-replies":  # the reporter reads a record with no (answered) requests
        rep = run_mmload("report", str(run_dir_from(res.stdout)), "--format", "md")
        assert rep.returncode == 0 and "FAIL" in rep.stdout, rep.stderr


def test_unreachable_prometheus_fails_fast(sim: str, tmp_path: Path) -> None:
    port = free_port()
    res = _run(tmp_path, _storm(tmp_path), sim, "--prometheus", f"http://127.0.0.1:{port}")
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.strip().splitlines() == [
        f"mmload: error: command line: --prometheus: http://127.0.0.1:{port} is not a "
        "Prometheus: GET /api/v1/query?query=up did not answer ([Errno 111] Connection refused)"
    ]
    assert not (tmp_path / "runs").exists()  # nothing started, nothing recorded


def test_prometheus_check_accepts_prometheus_and_refuses_other_servers(sim: str) -> None:
    with http_server(FakePrometheus) as url:
        check_prometheus(url)
        with pytest.raises(UserError, match="answered HTTP 404"):
            check_prometheus(url + "/sub")
    with pytest.raises(UserError, match=r"--prometheus: .* not with Prometheus' query API|404"):
        check_prometheus(sim)  # Mattermost (the simulator) is not a Prometheus


class Licensed(_Quiet):
    """license/client of a licensed Mattermost (``IsLicensed`` is a string, as the server's)."""

    def do_GET(self) -> None:
        self._json({"IsLicensed": "true", "SkuShortName": "enterprise"})


def test_the_license_probe_reads_is_licensed() -> None:
    with http_server(Licensed) as url:
        assert probe_license(url) is True
    assert probe_license(f"http://127.0.0.1:{free_port()}", timeout_s=1) is None
