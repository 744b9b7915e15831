"""The benchmark harness's pure parts: reading wrk, Prometheus text, and schedule windows."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))

import _common as common
import bench_schedule

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:8065/api/v4/users/me
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.01ms  300.00us   9.00ms   90.00%
    Req/Sec    24.90k     1.00k   26.00k    80.00%
  248000 requests in 10.00s, 50.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  24800.50
Transfer/sec:      5.00MB
"""


def test_parse_wrk_reads_rate_requests_and_errors() -> None:
    result = common.parse_wrk(WRK_OUTPUT)
    assert result == {
        "requests": 248000,
        "seconds": 10.0,
        "rps": 24800.5,
        "non_2xx": 7,
        "socket_errors": 3,
    }


def test_parse_wrk_rejects_unreadable_output() -> None:
    with pytest.raises(RuntimeError, match="could not read wrk"):
        common.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_prometheus_samples_sum_a_gauge_with_and_without_labels() -> None:
    text = (
        "# HELP mattermost_http_websockets_total open sockets\n"
        "# TYPE mattermost_http_websockets_total gauge\n"
        'mattermost_http_websockets_total{origin_client="web"} 12.0\n'
        'mattermost_http_websockets_total{origin_client=""} 3.0\n'
        "mattermost_http_websockets_total_other 99\n"
        "mattermost_login_logins_total 5.0\n"
    )
    samples = common.prometheus_samples(text, "mattermost_http_websockets_total")
    assert sorted(v for _, v in samples) == [3.0, 12.0]
    assert {"origin_client": "web"} in [labels for labels, _ in samples]
    assert common.prometheus_samples(text, "mattermost_login_logins_total") == [({}, 5.0)]


def test_pin_command_prefixes_taskset_only_when_asked() -> None:
    assert common.pin_command(["wrk"], [0]) == ["taskset", "-c", "0", "wrk"]
    assert common.pin_command(["wrk"], None) == ["wrk"]


def test_schedule_windows_count_scheduled_and_started_per_window() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    arrivals = []
    for i in range(20):  # 20 users over 4 s: 5 scheduled per 1 s window
        scheduled = t0 + timedelta(seconds=i * 0.2)
        late = 0.25 if i == 4 else 0.01  # user 4 starts in the next window
        arrivals.append({"scheduled": scheduled, "started": scheduled + timedelta(seconds=late)})
    args = argparse.Namespace(arrival_s=4.0, window_s=1.0, users=20)
    rows = bench_schedule.per_window(arrivals, args)
    assert [r["scheduled"] for r in rows] == [5, 5, 5, 5]
    assert [r["started"] for r in rows] == [4, 6, 5, 5]
    assert [r["deviation"] for r in rows] == [-0.2, 0.2, 0.0, 0.0]
    assert all(r["scheduled_vs_uniform"] == 0.0 for r in rows)


def test_a_failed_benchmark_still_ends_with_one_json_line() -> None:
    """The sim refuses the profile: the benchmark says why on its last line and exits 1."""
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_schedule.py"), "--login-ms", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["met"] is False
    assert "service_ms" in result["error"]
