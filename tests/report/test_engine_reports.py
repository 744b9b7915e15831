"""The Sev0 report of records the real engine made (tests/report/engine.py), read as a user does:
`mmload report --out`, then the HTML page in headless Chromium. Every plot is checked for the
data Plotly drew (the page marks each plot's traces and points after drawing), not for pixels.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pandas as pd
import pytest

from mmload import record
from tests.conftest import run_cli
from tests.report.conftest import PageCheck, load_in_chromium
from tests.report.engine import EngineRuns, make_engine_runs

pytestmark = pytest.mark.slow

TIME_PLOTS = {"arrivals", "logins", "login-latency", "errors", "websocket", "users"}
SERVER = {"server-app_cpu_percent", "server-db_connections", "server-api_p99_ms"}
TABLE_ROW = re.compile(r"^(\S.*?)\s{2,}([\d,]+)\s+([\d,]+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> EngineRuns:
    return make_engine_runs(tmp_path_factory.mktemp("engine"))


def report(run_dir: Path, tmp: Path) -> tuple[dict, PageCheck]:
    """`mmload report RUN --out DIR` (every format), then the page in Chromium."""
    out = tmp / run_dir.name
    res = run_cli("report", str(run_dir), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "report.html",
        "report.json",
        "report.junit.xml",
        "report.md",
    ]
    suite = ET.parse(out / "report.junit.xml").getroot().find("testsuite")
    slos = {s.name for s in record.read_meta(run_dir).slos}
    assert {c.get("name") for c in suite.findall("testcase")} == {"run.outcome"} | {
        f"slo.{n}" for n in slos
    }
    seen = load_in_chromium(out / "report.html", tmp)
    assert seen.returncode == 0 and seen.console == [], seen.console
    assert seen.attr("data-js-errors") is None
    return json.loads((out / "report.json").read_text()), seen


def last(values: list[float]) -> float:
    return [v for v in values if v == v][-1]  # the last non-NaN


def test_storm_report_shows_the_verdict_and_every_plot_with_data(
    runs: EngineRuns, tmp_path: Path
) -> None:
    doc, seen = report(runs.storm, tmp_path)
    meta = record.read_meta(runs.storm)
    # the verdicts are the engine's own (mmload run evaluated them); 429s fail error_rate
    assert {s.name for s in meta.slos} >= {"login_p99_ms", "error_rate", "p99_ms"}
    assert seen.banner() == doc["verdict"]["status"] == "FAIL"
    assert any(r.startswith("error_rate failed") for r in doc["verdict"]["reasons"])
    assert "error_rate failed: measured" in seen.dom
    drawn = seen.figures()
    want = TIME_PLOTS | SERVER | {"latency", "throughput", "endpoint-p99"}
    assert want <= set(drawn), sorted(drawn)
    assert all(nonzero > 0 for _t, _p, nonzero in (drawn[f] for f in want)), drawn
    # arrivals: cumulative at window ENDS, final values are the record's counts
    arr = record.read_table(runs.storm, record.ARRIVALS).to_pandas()
    logins = arr[arr["phase"] == "login"]
    first_window = int(logins["scheduled"].min().timestamp()) // 10 * 10
    xs = [pd.Timestamp(x).timestamp() for x in seen.figure_data("arrivals")["data"][0]["x"]]
    scheduled = dict(zip(xs, seen.trace("arrivals", "scheduled"), strict=True))
    assert xs[0] % 10 == 0 and xs[0] <= first_window and scheduled[xs[0]] == 0
    # the first arrival is counted at the END of its window, not one window early
    assert scheduled[first_window] == 0 and scheduled[first_window + 10] >= 1
    assert last(seen.trace("arrivals", "scheduled")) == len(logins) == 40
    assert last(seen.trace("arrivals", "logged in")) == logins["logged_in"].notna().sum()
    failed = int((logins["outcome"] == "failed").sum())
    assert failed > 0 and last(seen.trace("arrivals", "failed")) == failed
    # errors by class split 429 from 5xx: the storm's errors are all rate-limited logins
    assert sum(seen.trace("errors", "429 rate limited")) > 0
    assert sum(seen.trace("errors", "5xx")) == 0
    assert doc["error_classes"]["rate_limited"] > 0 and doc["error_classes"]["server"] == 0
    # login latency, service and corrected, from the HDR windows
    assert {t["name"] for t in seen.figure_data("login-latency")["data"]} == {
        "p50 service",
        "p99 service",
        "p50 corrected",
        "p99 corrected",
    }
    # parameters, and the licence the simulator reports is not invented when unknown
    for text in ("report-storm", "login window", "11.7.1", "sim-storm-1", "workers"):
        assert text in seen.dom


def test_run_prints_the_p99_report_prints(runs: EngineRuns, tmp_path: Path) -> None:
    """One definition of every number: `mmload run`'s p99 column == `mmload report`'s p99."""
    res = run_cli("report", str(runs.storm), "-f", "json")
    assert res.returncode == 0, res.stderr
    reported = {e["name"]: e["p99_ms"] for e in json.loads(res.stdout)["endpoints"]}
    printed = {}
    for line in runs.stdout["storm"].splitlines():
        m = TABLE_ROW.match(line)
        if m and m.group(1).split(" ", 1)[0] in ("GET", "POST", "PUT", "WS"):
            printed[m.group(1).strip()] = m.group(6)
    assert printed and set(printed) == {n for n, v in reported.items() if v is not None}
    for name, p99 in printed.items():
        assert p99 == f"{reported[name]:,.0f}", name


def test_herd_report_shows_the_reconnects(runs: EngineRuns, tmp_path: Path) -> None:
    doc, seen = report(runs.herd, tmp_path)
    assert seen.banner() in ("PASS", "FAIL")
    drawn = seen.figures()
    assert TIME_PLOTS | {"reconnects"} | SERVER <= set(drawn), sorted(drawn)
    for fid in ("arrivals", "logins", "websocket", "users", "reconnects", *SERVER):
        assert drawn[fid][2] > 0, (fid, drawn[fid])
    rec = doc["reconnects"]
    assert rec["reconnects"] == 20 and rec["reconnected"] > 0 and rec["drop_at"]
    assert last(seen.trace("reconnects", "reconnected")) == rec["reconnected"]
    # the outage drops every socket: connected falls, then the herd brings it back
    ends = [pd.Timestamp(x, tz="UTC") for x in seen.figure_data("websocket")["data"][0]["x"]]
    connected = seen.trace("websocket", "connected")
    drop = pd.Timestamp(rec["drop_at"])
    back = pd.Timestamp(rec["last_reconnected"])
    after_drop = [v for t, v in zip(ends, connected, strict=True) if t > drop]
    assert max(connected) <= 20 and after_drop[0] < 20  # the first window end after the outage
    later = [v for t, v in zip(ends, connected, strict=True) if t >= back]
    # every client back (unless Locust had already stopped them at the window's end)
    assert later[0] == rec["reconnected"] or later[0] == 0
    assert rec["reconnected"] in after_drop
    assert "Reconnect herd" in seen.dom and "outage start → connected again" in seen.dom


def test_ceiling_report_shows_the_loop(runs: EngineRuns, tmp_path: Path) -> None:
    doc, seen = report(runs.ceiling, tmp_path)
    meta = record.read_meta(runs.ceiling)
    assert meta.ceiling and meta.ceiling.intervals and meta.supported_users is not None
    assert seen.banner() in ("PASS", "FAIL", "NO SLOS")
    drawn = seen.figures()
    want = {"ceiling", "logins", "errors", "websocket", "users", "latency"} | SERVER
    assert want <= set(drawn), sorted(drawn)
    for fid in want - {"errors"}:
        assert drawn[fid][2] > 0, (fid, drawn[fid])
    users = seen.trace("ceiling", "users measured")
    assert users == [float(iv.users) for iv in meta.ceiling.intervals]
    assert doc["ceiling"]["intervals"] and "Ceiling loop" in seen.dom
    assert f"supported users {meta.supported_users:,.0f}" in seen.dom
