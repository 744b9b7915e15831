"""End to end: a real (tiny) Sev0 login storm with Locust against `mmload sim`, then every report
format of its record. Everything runs on 127.0.0.1 and stops by itself."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from mmload.sim.launcher import running_sim
from tests.conftest import run_cli
from tests.report.conftest import load_in_chromium


@pytest.mark.slow
def test_real_storm_reports_in_all_formats(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    with running_sim(users=60, profile="fast") as sim:
        res = run_cli(
            "run",
            "sev0-login-storm",
            "--target",
            sim.url,
            "--users",
            "20",
            "--scale",
            "0.003",
            "--duration",
            "2",
            "--workers",
            "0",
            "--out",
            str(runs),
            timeout=90,
        )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    (run_dir,) = list(runs.iterdir())
    out = tmp_path / "report"
    rep = run_cli("report", str(run_dir), "--out", str(out), "--format", "md,html,json,junit")
    assert rep.returncode == 0, rep.stderr

    doc = json.loads((out / "report.json").read_text())
    meta = json.loads((run_dir / "run.json").read_text())
    assert doc["run"]["outcome"] == "completed"
    assert doc["run"]["requests"] == meta["totals"]["requests"] > 0
    names = {e["name"] for e in doc["endpoints"]}
    assert {"POST /api/v4/users/login", "WS /api/v4/websocket"} <= names
    login = next(e for e in doc["endpoints"] if e["name"] == "POST /api/v4/users/login")
    assert login["count"] == 20 and login["p99_ms"] > 0
    assert doc["sev0"]["arrivals"] == 20 and doc["sev0"]["ws_connect_success"] == 1.0

    slos = {s["name"] for s in meta["slos"]}
    suite = ET.parse(out / "report.junit.xml").getroot().find("testsuite")
    assert {c.get("name") for c in suite.findall("testcase")} == {"run.outcome"} | {
        f"slo.{n}" for n in slos
    }
    assert re.search(r"^## SLO verdicts: \d+ passed", (out / "report.md").read_text(), re.M)

    seen = load_in_chromium(out / "report.html", tmp_path)
    assert seen.console == [] and seen.attr("data-js-errors") is None
    assert int(seen.attr("data-plots-rendered")) >= 4
