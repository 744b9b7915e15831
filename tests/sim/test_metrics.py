"""/metrics: Mattermost's metric names and labels, valid exposition format (checked by the real
`promtool check metrics`), one registry per simulator."""

from __future__ import annotations

import http.client
import shutil
import subprocess

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from mmload.sim.server import start_in_thread
from tests.sim.conftest import small_settings


def login_without_user_agent(base: str) -> int:
    """http.client sends no User-Agent unless told (requests/urllib3 always add one)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request(
        "POST",
        "/api/v4/users/login",
        body='{"login_id":"user-1","password":"nope-1234"}',
        headers={"Content-Type": "application/json"},
    )
    status = conn.getresponse().status
    conn.close()
    return status


def test_metrics_names_labels_and_promtool() -> None:
    with start_in_thread(small_settings()) as sim, start_in_thread(small_settings()) as other:
        url = sim.url + "/api/v4/users/login"
        ok = requests.post(
            url,
            json={"login_id": "user-1", "password": "Loadtest-1!"},
            headers={
                "User-Agent": "Mozilla/5.0 (X11) Chrome/120",
                "X-Page-Load-Context": "page_load",
            },
            timeout=5,
        )
        assert ok.status_code == 200
        assert login_without_user_agent(sim.url) == 401
        requests.get(
            sim.url + "/api/v4/users/me",
            timeout=5,
            headers={
                "Authorization": "Bearer " + ok.headers["Token"],
                "User-Agent": "rnbeta/2.0 (Android)",
            },
        )
        desktop = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120 Electron/28 Mattermost/5.9.0"
        requests.get(sim.url + "/api/v4/system/ping", headers={"User-Agent": desktop}, timeout=5)
        text = requests.get(sim.metrics_url, timeout=5).text
        other_text = requests.get(other.metrics_url, timeout=5).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "mattermost_api_time",
        "mattermost_http_requests",
        "mattermost_http_errors",
        "mattermost_http_websockets_total",
        "mattermost_login_logins",
        "mattermost_login_logins_fail",
        "mattermost_websocket_broadcasts",
        "process_cpu_seconds",
    ):
        assert name in families, name
    counts = {
        (
            s.labels["handler"],
            s.labels["status_code"],
            s.labels["origin_client"],
            s.labels["page_load_context"],
        ): s.value
        for s in families["mattermost_api_time"].samples
        if s.name.endswith("_count")
    }
    assert counts[("login", "200", "web", "page_load")] == 1
    assert counts[("login", "401", "unknown", "")] == 1  # no User-Agent
    assert counts[("getUser", "200", "mobile", "")] == 1
    assert counts[("getSystemPing", "200", "desktop", "")] == 1
    assert "mattermost_http_requests_total 4.0" in text
    assert "mattermost_http_errors_total 1.0" in text
    assert "mattermost_login_logins_total 1.0" in text
    assert "mattermost_login_logins_fail_total 1.0" in text
    assert "_created" not in text  # Mattermost's Go exporter has no *_created series
    assert "mattermost_http_requests_total 0.0" in other_text  # separate registries
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found (Debian package prometheus; `make sysdeps`)")
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
