"""A ``replay`` curve read from its sources, and bad ``arrivals:`` refused (exit 2, one line).

Sources: a counts CSV, a timestamps CSV, an nginx (combined) and an AWS ALB access log (plain
and gzip), and a real Prometheus (the Debian package) serving a backfilled
``mattermost_api_time_count{handler="login"}`` (promtool), through ``/api/v1/query_range``.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mmload.config.curves import portable_text
from mmload.config.scenario import load_scenario
from tests.load.promserver import running_prometheus
from tests.test_bad_input import TARGET, run_inprocess

COUNTS = [3, 0, 5, 12, 7, 1]  # logins per 10 s
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC).timestamp()


def login_times(counts: list[int] = COUNTS, width: float = 10.0) -> list[float]:
    """Epoch times of the logins of ``counts``, spread inside each interval."""
    return [T0 + i * width + (j + 0.5) * width / c for i, c in enumerate(counts) for j in range(c)]


def nginx_line(t: float, request: str = "POST /api/v4/users/login HTTP/1.1", status=200) -> str:
    stamp = datetime.fromtimestamp(t, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return (
        f'192.0.2.7 - - [{stamp}] "{request}" {status} 312 "https://mm.example.com/" "Mozilla/5.0"'
    )


def alb_line(t: float, request: str = "POST https://mm.example.com:443/api/v4/users/login") -> str:
    stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (
        f"https {stamp} app/mm-alb/50dc6c495c0c9188 192.0.2.10:51234 10.0.1.5:8065 0.000 0.052 "
        f'0.000 200 200 312 1024 "{request} HTTP/1.1" "Mozilla/5.0" ECDHE-RSA-AES128-GCM-SHA256 '
        "TLSv1.2 arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/mm/73e2d6bc "
        f'"Root=1-58337262-36d228ad5d99923122bbe354" "mm.example.com" "-" 0 {stamp} "forward" '
        f'"-" "-" "10.0.1.5:8065" "200" "-" "-"'
    )


def scenario_with(tmp: Path, arrivals: dict, **fields: object) -> Path:
    path = tmp / "replay.yaml"
    spec = {"name": "replay", "kind": "storm", "hold_s": 1, "arrivals": arrivals, **fields}
    path.write_text(json.dumps(spec))
    return path


def counts_of(path: Path) -> list[float]:
    s, _ = load_scenario(str(path))
    return s.arrivals.counts


def test_counts_csv_with_comments_and_a_header(tmp_path: Path) -> None:
    rows = "\n".join(f"09:00:{10 * i:02d},{c}" for i, c in enumerate(COUNTS))
    (tmp_path / "curve.csv").write_text(f"# a curve\ninterval_start,count\n{rows}\n")
    s, _ = load_scenario(str(scenario_with(tmp_path, {"curve": "replay", "csv": "curve.csv"})))
    assert s.arrivals.counts == COUNTS and (s.users, s.arrival_s) == (28, 60)
    (tmp_path / "bare.csv").write_text("\n".join(map(str, COUNTS)))
    spec = {"curve": "replay", "csv": "bare.csv", "interval_s": 5, "scale": 2, "time_scale": 3}
    s, _ = load_scenario(str(scenario_with(tmp_path, spec)))
    assert s.arrivals.counts == COUNTS and (s.users, s.arrival_s) == (56, 90)


def test_timestamps_csv_is_binned_from_the_first_login(tmp_path: Path) -> None:
    stamps = login_times()
    iso = [datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z") for t in stamps]
    (tmp_path / "t.csv").write_text(
        "user,timestamp\n" + "".join(f"u{i},{s}\n" for i, s in enumerate(iso))
    )
    first_off = stamps[0] - T0  # bins start at the first login: shift the expectation
    assert first_off < 10
    got = counts_of(scenario_with(tmp_path, {"curve": "replay", "csv": "t.csv"}))
    expect = [0] * len(COUNTS)
    for t in stamps:
        expect[int((t - stamps[0]) // 10)] += 1
    assert got == expect[: len(got)] and sum(got) == sum(COUNTS)


@pytest.mark.parametrize("fmt", ["nginx", "alb"])
@pytest.mark.parametrize("gz", [False, True])
def test_access_log_counts_only_the_login_posts(tmp_path: Path, fmt: str, gz: bool) -> None:
    line = nginx_line if fmt == "nginx" else alb_line
    lines = []
    for t in login_times():
        lines.append(line(t))
        if fmt == "nginx":  # other requests, a sub-path login, and a login refused (demand too)
            lines.append(nginx_line(t + 0.01, "GET /api/v4/users/me HTTP/1.1"))
            lines.append(nginx_line(t + 0.02, "POST /api/v4/users/logout HTTP/1.1"))
        else:
            lines.append(alb_line(t + 0.01, "GET https://mm.example.com:443/api/v4/users/login"))
            lines.append(alb_line(t + 0.02, "POST https://mm.example.com:443/api/v4/users/logout"))
    if fmt == "nginx":  # a prefixed deployment and a 429 count as logins
        lines[0] = nginx_line(login_times()[0], "POST /chat/api/v4/users/login HTTP/2.0", 429)
    text = "\n".join(lines) + "\n"
    name = "access.log.gz" if gz else "access.log"
    (tmp_path / name).write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    spec = {"curve": "replay", "access_log": name, "log_format": fmt}
    got = counts_of(scenario_with(tmp_path, spec))
    first = login_times()[0]
    expect = [0] * len(COUNTS)
    for t in login_times():
        expect[int((int(t) - int(first)) // 10)] += 1  # nginx times are whole seconds
    if fmt == "alb":
        expect = [0] * len(COUNTS)
        for t in login_times():
            expect[int((t - first) // 10)] += 1
    assert got == expect[: len(got)] and sum(got) == sum(COUNTS)


def backfilled_prometheus_tsdb(tmp: Path, per_step: list[int], start: int) -> None:
    """A TSDB whose login counter grows by ``per_step[i]`` in the 10 s before ``start + 10 i``."""
    lines = ["# TYPE mattermost_api_time_count unknown"]
    total = 0
    for i, c in enumerate([0, *per_step]):
        total += c
        for status, share in (("200", total), ("401", 2 * total)):  # two series, summed
            lines.append(
                f'mattermost_api_time_count{{handler="login",status_code="{status}"}} '
                f"{share} {start + (i - 1) * 10}"
            )
        lines.append(
            f'mattermost_api_time_count{{handler="getMe"}} {99 * i} {start + (i - 1) * 10}'
        )
    (tmp / "in.om").write_text("\n".join(lines) + "\n# EOF\n")
    subprocess.run(
        [
            "promtool",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(tmp / "in.om"),
            str(tmp / "tsdb"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_prometheus_range_query_of_the_login_counter(tmp_path: Path) -> None:
    per_step = [10, 40, 90, 60, 30, 20, 10, 0, 5, 5] * 3
    start = int(time.time()) // 3600 * 3600 - 3 * 3600  # an hour well inside the retention
    backfilled_prometheus_tsdb(tmp_path, per_step, start)
    config = "global: {scrape_interval: 15s}\nscrape_configs: []\n"
    with running_prometheus(config, tmp_path, ready_s=60) as url:
        delta = (
            'sum(mattermost_api_time_count{handler="login"}) - '
            'sum(mattermost_api_time_count{handler="login"} offset 10s)'
        )
        end = start + 10 * (len(per_step) - 1)
        prom = {"url": url, "query": delta, "values": "count", "start": str(start), "end": str(end)}
        got = counts_of(scenario_with(tmp_path, {"curve": "replay", "prometheus": prom}))
        assert got == [3 * c for c in per_step]  # exact: each step's own logins, both series
        # the default query, a per-second rate over 1 m: smoothed, but the same logins in all
        iso = datetime.fromtimestamp(start + 60, UTC).isoformat().replace("+00:00", "Z")
        prom = {"url": url, "start": iso, "end": str(end)}
        s, _ = load_scenario(str(scenario_with(tmp_path, {"curve": "replay", "prometheus": prom})))
        assert s.arrivals.interval_s == 10 and len(s.arrivals.counts) == len(per_step) - 6
        assert sum(s.arrivals.counts) == pytest.approx(3 * sum(per_step[6:]), rel=0.25)


BAD = [
    ({"curve": "zigzag"}, "arrivals"),
    ({"curve": "ramp", "start_per_s": 1, "end_per_s": 5}, "arrivals.ramp.duration_s"),
    ({"curve": "ramp", "start_per_s": 0, "end_per_s": 0, "duration_s": 9}, "arrivals.ramp"),
    ({"curve": "ramp", "start_per_s": -1, "end_per_s": 5, "duration_s": 9}, "start_per_s"),
    ({"curve": "steps", "steps": []}, "arrivals.steps.steps"),
    ({"curve": "steps", "steps": [{"duration_s": 5, "users": 3, "rate_per_s": 1}]}, "steps[0]"),
    ({"curve": "steps", "steps": [{"duration_s": 5, "usrs": 3}]}, "steps[0].usrs"),
    (
        {
            "curve": "spike",
            "baseline_per_s": 1,
            "peak_per_s": 9,
            "at_s": 50,
            "width_s": 20,
            "duration_s": 60,
        },
        "arrivals.spike",
    ),
    ({"curve": "poisson", "seed": -1}, "arrivals.poisson.seed"),
    ({"curve": "replay"}, "arrivals.replay"),
    ({"curve": "replay", "csv": "a.csv", "access_log": "b.log"}, "arrivals.replay"),
    ({"curve": "replay", "counts": [0, 0]}, "arrivals.replay"),
    ({"curve": "replay", "counts": [1, 2], "scale": 0}, "arrivals.replay.scale"),
    ({"curve": "replay", "csv": "missing.csv"}, "arrivals.csv"),
    ({"curve": "replay", "csv": "bad.csv"}, "arrivals.csv: "),
    ({"curve": "replay", "access_log": "empty.log"}, "arrivals.access_log"),
    (
        {"curve": "replay", "prometheus": {"url": "http://127.0.0.1:9", "start": "0", "end": "60"}},
        "arrivals.prometheus",
    ),
    (
        {"curve": "replay", "prometheus": {"url": "http://127.0.0.1:9", "start": "x", "end": "6"}},
        "arrivals.prometheus",
    ),
]


@pytest.mark.parametrize("arrivals,field", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_arrivals_exit_2_with_one_line(tmp_path: Path, arrivals: dict, field: str) -> None:
    (tmp_path / "bad.csv").write_text("count\n3\nlots\n")
    (tmp_path / "empty.log").write_text(nginx_line(T0, "GET /api/v4/users/me HTTP/1.1") + "\n")
    path = scenario_with(tmp_path, arrivals)
    code, out, err = run_inprocess(["run", str(path), *TARGET])
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(path) in lines[0] and field in lines[0], lines[0]


def test_bad_csv_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("# comment\ncount\n3\nlots\n")
    code, _, err = run_inprocess(
        ["run", str(scenario_with(tmp_path, {"curve": "replay", "csv": "bad.csv"})), *TARGET]
    )
    assert code == 2 and "bad.csv: line 4: not a count: 'lots'" in err, err


def test_the_remote_master_gets_the_counts_not_the_file(tmp_path: Path) -> None:
    """`mmload load start` sends a custom scenario's text to the coordinator: a replay read from
    a file here travels as its counts, so it loads there without the file."""
    (tmp_path / "curve.csv").write_text("count\n" + "\n".join(map(str, COUNTS)))
    path = scenario_with(tmp_path, {"curve": "replay", "csv": "curve.csv", "scale": 2}, users=30)
    here, _ = load_scenario(str(path))
    elsewhere = tmp_path / "coordinator"
    elsewhere.mkdir()
    (elsewhere / "scenario.yaml").write_text(portable_text(here, path))
    there, _ = load_scenario(str(elsewhere / "scenario.yaml"))
    no_source = {"arrivals": {"csv"}}
    assert there.model_dump(exclude=no_source) == here.model_dump(exclude=no_source)
    assert there.users == 30 and there.arrivals.counts == COUNTS and there.arrivals.scale == 2
    plain = scenario_with(
        elsewhere, {"curve": "ramp", "start_per_s": 1, "end_per_s": 2, "duration_s": 4}
    )
    assert portable_text(load_scenario(str(plain))[0], plain) == plain.read_text()
