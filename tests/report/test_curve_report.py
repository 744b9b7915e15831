"""The report's requested vs achieved arrival curve, from run.json's ``arrival_curve``.

A synthetic record (written through mmload/record.py) first as an older engine wrote it, without
the requested curve: the report reads it as before and shows no curve. Then with a curve: the
Markdown table and the HTML plot hold the requested arrivals per window beside the scheduled and
started ones counted from the arrivals table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mmload import record
from mmload.report.runs import build_run_report
from tests.conftest import run_cli
from tests.report.conftest import load_in_chromium
from tests.report.synth import Spec, make_record


def with_curve(run_dir: Path, requested: list[float]) -> pd.Timestamp:
    """run.json with a requested curve from the first scheduled arrival; its t0."""
    arr = record.read_table(run_dir, "arrivals").to_pandas()
    t0 = arr["scheduled"].min()
    meta = json.loads((run_dir / "run.json").read_text())
    meta["arrival_curve"] = {
        "curve": "ramp",
        "t0": record.iso(t0.to_pydatetime()),
        "window_s": 10,
        "requested": requested,
    }
    (run_dir / "run.json").write_text(json.dumps(meta))
    return t0


def test_older_records_have_no_curve_and_still_report(tmp_path: Path) -> None:
    run = make_record(tmp_path / "old", Spec(rows=3000, duration_s=60, users=120))
    rep = build_run_report(run)
    assert rep.run.arrival_curve is None and rep.curve_windows is None
    out = tmp_path / "out"
    assert run_cli("report", str(run), "--out", str(out), "--format", "md").returncode == 0
    md = (out / "report.md").read_text()
    assert "## Sev0 login storm" in md and "Arrival curve" not in md


def test_requested_vs_started_per_window_in_md_and_html(tmp_path: Path) -> None:
    run = make_record(tmp_path / "new", Spec(rows=3000, duration_s=100, users=120))
    requested = [10.5, 20, 30, 30, 20, 9.5]
    t0 = with_curve(run, requested)
    arr = record.read_table(run, "arrivals").to_pandas()
    windows = ((arr["started"] - t0).dt.total_seconds() // 10).astype(int)
    started = [int((windows == i).sum()) for i in range(6)]
    rep = build_run_report(run)
    cw = rep.curve_windows
    assert cw is not None and cw["requested"].tolist() == requested
    assert cw["started"].tolist() == started and sum(started) < 120  # later ones in no window
    assert cw["started_off"].tolist() == [
        (s - r) / r for s, r in zip(started, requested, strict=True)
    ]

    out = tmp_path / "out"
    res = run_cli("report", str(run), "--out", str(out), "--format", "md,html,json")
    assert res.returncode == 0, res.stderr
    md = (out / "report.md").read_text()
    assert "## Arrival curve: requested vs started" in md
    assert "The ramp curve the scenario asked for, in 10 s windows" in md
    sched0 = int(cw["scheduled"][0])
    assert f"| 0 | 10.5 | {sched0:,} | {started[0]:,} |" in md, md
    doc = json.loads((out / "report.json").read_text())
    assert [w["requested"] for w in doc["arrival_curve"]] == requested

    seen = load_in_chromium(out / "report.html", tmp_path)
    assert seen.returncode == 0 and seen.console == [], seen.console
    assert "arrival-curve" in seen.figures()
    assert seen.trace("arrival-curve", "requested") == [r / 10 for r in requested]
    assert seen.trace("arrival-curve", "started") == [s / 10 for s in started]
