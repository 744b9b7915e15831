"""`mmload campaign run/status/report` end to end against `mmload sim`: 2 versions (simulator
profiles) x 2 architectures (simulator sizes) x 2 repeats of a small ceiling, two simulators at
once; interrupted (SIGINT) and killed (SIGKILL) in the middle, then resumed without repeating a
finished run; the table recomputed here from the run records' run.json, and the verdicts
against `mmload compare` over the same records.

Capacities: each user makes about one request per second (one action, 0.8-1.2 s idle); a
version's profile sets the worker pool's service time (v1 40 ms, v2 25 ms) and an architecture
its slots (1 or 2), so the pool saturates near 25, 40, 50 and 80 users. The asserts are on the
records and the state, never on how fast anything ran.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import MMLOAD, run_cli

pytestmark = pytest.mark.slow

VERSIONS = ["v1", "v2"]
ARCHS = ["small", "large"]
RUNS = 8
WAIT_S = 240.0  # generous: CI runs three modules at once on 2 cores


def write_campaign(root: Path, **extra: Any) -> Path:
    """The campaign, its two profiles and its small ceiling scenario, in ``root``."""
    (root / "v1.yaml").write_text("extends: fast\nworker_pool: {size: 1, service_ms: 40}\n")
    (root / "v2.yaml").write_text("extends: fast\nworker_pool: {size: 1, service_ms: 25}\n")
    scenario = {
        "name": "small-ceiling",
        "kind": "ceiling",
        "action_weights": {"RemoveCustomStatus": 1},
        "only_listed_actions": True,
        "client": "webapp-legacy",
        "idle": {"min_ms": 800, "avg_ms": 1000},
        "websocket": {"enabled": False},
        "ceiling": {
            "start_users": 6,
            "step_users": 12,
            "min_step_users": 3,
            "remove_fraction": 0.15,
            "max_users": 70,
            "interval_s": 2,
            "settle_s": 0.5,
            "stable_intervals": 2,
            "stable_tolerance": 0.25,
            "spawn_rate": 50,
            "max_duration_s": 12,
        },
        "slos": {"p99_ms": 2000, "avg_ms": 100, "http_5xx_rate": None, "cpu_percent": None},
    }
    (root / "ceiling.yaml").write_text(json.dumps(scenario))
    campaign = {
        "name": "simh2",
        "versions": [
            {"label": "v1", "sim": {"profile_file": "v1.yaml"}},
            {"label": "v2", "sim": {"profile_file": "v2.yaml"}},
        ],
        "architectures": [
            {"name": "small", "sim": {"users": 200, "pool_size": 1}},
            {"name": "large", "sim": {"users": 200, "pool_size": 2}},
        ],
        "scenarios": [{"scenario": "ceiling.yaml"}],
        "repeats": 2,
        "concurrency": 2,
        "budget_usd": 1,
        "timings": {"deploy_s": 5, "upgrade_s": 5, "between_runs_s": 1, "destroy_s": 1},
        "output_dir": "out",
        **extra,
    }
    path = root / "campaign.yaml"
    path.write_text(yaml.safe_dump(campaign, sort_keys=False))
    return path


def state_of(out: Path) -> dict[str, Any]:
    path = out / "campaign-state.json"
    return json.loads(path.read_text()) if path.exists() else {"runs": {}, "deployments": {}}


def statuses(out: Path) -> list[str]:
    return [e["status"] for e in state_of(out)["runs"].values()]


def start(path: Path, log: Path) -> subprocess.Popen:
    with log.open("wb") as handle:
        return subprocess.Popen(
            [MMLOAD, "campaign", "run", str(path)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def wait_for(out: Path, finished: int, proc: subprocess.Popen) -> None:
    """Until ``finished`` runs are finished and another one has just started: its record not
    written yet, so it cannot finish before the kill (a run lasts over 10 s)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        runs = state_of(out)["runs"]
        done = sum(e["status"] == "finished" for e in runs.values())
        starting = [
            k
            for k, e in runs.items()
            if e["status"] == "running" and not list((out / "runs" / k).glob("*/run.json"))
        ]
        if done >= finished and starting:
            return
        assert proc.poll() is None, f"campaign run ended early ({proc.returncode}): {statuses(out)}"
        time.sleep(0.2)
    proc.kill()
    proc.wait(10)
    raise AssertionError(f"not {finished} finished runs in {WAIT_S:g} s: {statuses(out)}")


def pids_of(out: Path) -> list[int]:
    """Every process the campaign recorded: simulators and `mmload run`s."""
    data = state_of(out)
    pids = [e.get("pid") for e in data["runs"].values()]
    pids += [d.get("pid") for d in data["deployments"].values()]
    return [p for p in pids if isinstance(p, int)]


def assert_gone(pids: list[int]) -> None:
    """None of them outlives the campaign process (they die with it, SIGKILL included)."""
    deadline = time.monotonic() + 60
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if os.path.exists(f"/proc/{p}") and not zombie(p)]
        time.sleep(0.2)
    assert not alive, f"left running: {alive}"


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


def finished_records(out: Path) -> dict[str, tuple[str, str]]:
    """key -> (record path, run.json text) of every finished run."""
    return {
        key: (e["record"], (out / e["record"] / "run.json").read_text())
        for key, e in state_of(out)["runs"].items()
        if e["status"] == "finished"
    }


def test_campaign_runs_resumes_and_reports(tmp_path: Path) -> None:
    path = write_campaign(tmp_path)
    out = tmp_path / "out"
    plan = run_cli("campaign", "plan", str(path), "--json")
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["cost_usd"] == 0

    # 1. SIGKILLed in the middle: no simulator or run is left behind.
    proc = start(path, tmp_path / "run1.log")
    wait_for(out, 2, proc)
    pids = pids_of(out)
    proc.kill()
    proc.wait(30)
    assert_gone(pids)
    first = finished_records(out)
    assert 2 <= len(first) < RUNS
    doc = json.loads(run_cli("campaign", "status", str(path), "--json").stdout)
    assert doc["status"].startswith("stopped") and doc["runs_done"] == len(first)
    assert doc["runs_total"] == RUNS and doc["running"]  # as the killed process left them
    assert doc["spent_usd"] == 0

    # 2. Resumed to the end: nothing finished is redone; the killed runs are.
    proc = start(path, tmp_path / "run2.log")
    assert proc.wait(WAIT_S * 2) == 0, (tmp_path / "run2.log").read_text()
    final = finished_records(out)
    assert len(final) == RUNS
    assert {k: final[k] for k in first} == first
    runs = state_of(out)["runs"]
    assert all(runs[k]["attempts"] == 1 for k in first)
    assert sum(e["attempts"] for e in runs.values()) > RUNS  # the killed ones ran again
    records = sorted(p.parent for p in (out / "runs").glob("**/run.json"))
    assert len(records) == RUNS  # one record per run: killed attempts are set aside
    spans = [d["spans"] for d in state_of(out)["deployments"].values()]
    assert len(spans) == 2 and all(len(s) >= 2 for s in spans)  # a restart per version
    (a1, a2) = (spans[0][0], spans[1][0])
    assert max(a1[0], a2[0]) < min(a1[1], a2[1])  # concurrency 2: both simulators at once
    assert list((out / "interrupted").glob("**/run.json"))

    # 3. The report against a recomputation from the records themselves.
    rep = run_cli("campaign", "report", str(path), timeout=180)
    assert rep.returncode == 0, rep.stderr
    report_dir = out / "report"
    table = json.loads((report_dir / "campaign.json").read_text())
    assert table["complete"] and table["progress"] == {"finished": RUNS}
    metas = [json.loads((r / "run.json").read_text()) for r in records]
    assert all(m["outcome"] == "completed" for m in metas)
    groups: dict[tuple[str, str], list[float]] = {}
    sides: dict[tuple[str, str], list[str]] = {}
    for r, m in zip(records, metas, strict=True):  # counted as `mmload ceiling` counts
        if m["supported_users"] is not None:  # (a ceiling where nothing held has none)
            groups.setdefault((m["architecture"], m["label"]), []).append(m["supported_users"])
            sides.setdefault((m["architecture"], m["label"]), []).append(str(r))
    assert groups, "no run measured supported users"
    rows = {(r["architecture"], r["version"]): r for r in table["rows"]}
    assert set(rows) == set(groups)
    md = (report_dir / "campaign.md").read_text()
    html = (report_dir / "campaign.html").read_text()
    for key, values in groups.items():
        row = rows[key]
        assert row["runs"] == len(values) and sorted(row["values"]) == sorted(values)
        mean = sum(values) / len(values)
        assert row["mean"] == pytest.approx(mean)
        assert (row["min"], row["max"]) == (min(values), max(values))
        if len(values) > 1:
            assert row["stdev"] == pytest.approx(statistics.stdev(values))
        assert f"| {key[0]} | {key[1]} | {len(values)} | {mean:,.1f} |" in md
        assert f"{mean:,.1f}" in html
    # The verdict v2 vs v1 is `mmload compare`'s over the same records.
    for arch in ARCHS:
        if (arch, "v1") not in groups or (arch, "v2") not in groups:
            continue
        cmp = run_cli("compare", *sides[arch, "v1"], *sides[arch, "v2"], "--format", "json")
        assert cmp.returncode == 0, cmp.stderr
        users = json.loads(cmp.stdout)["supported_users"]
        verdict = rows[(arch, "v2")]["verdict"]
        assert verdict["verdict"] == users["verdict"]
        assert verdict["delta_pct"] == pytest.approx(users["delta_pct"])
        if users["p_value"] is None:  # fewer than 2 counted runs a side: the band alone
            assert verdict["p_value"] is None
        else:
            assert verdict["p_value"] == pytest.approx(users["p_value"])
        assert rows[(arch, "v1")]["verdict"] is None


def write_comparison(root: Path) -> Path:
    """2 versions x 1 architecture x 1 repeat of a bounded run at fixed users."""
    path = write_campaign(root)
    steady = {
        "name": "small-steady",
        "kind": "steady",
        "users": 50,
        "arrival_s": 1,
        "hold_s": 4,
        "action_weights": {"RemoveCustomStatus": 1},
        "only_listed_actions": True,
        "client": "webapp-legacy",
        "idle": {"min_ms": 800, "avg_ms": 1000},
        "websocket": {"enabled": False},
        "slos": {"p99_ms": 2000, "avg_ms": None, "http_5xx_rate": None, "cpu_percent": None},
    }
    (root / "steady.yaml").write_text(json.dumps(steady))
    campaign = yaml.safe_load(path.read_text())
    campaign |= {
        "architectures": campaign["architectures"][1:],
        "scenarios": [{"scenario": "steady.yaml", "users": 6, "duration_s": 4}],
        "repeats": 1,
        "concurrency": 1,
    }
    path.write_text(yaml.safe_dump(campaign, sort_keys=False))
    return path


def test_comparison_runs_interrupted_and_resumed(tmp_path: Path) -> None:
    path = write_comparison(tmp_path)
    out = tmp_path / "out"
    proc = start(path, tmp_path / "run1.log")
    deadline = time.monotonic() + WAIT_S
    while not list((out / "runs").glob("**/run.json")):  # the first run has its record
        assert proc.poll() is None and time.monotonic() < deadline, statuses(out)
        time.sleep(0.2)
    pids = pids_of(out)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(120) == 130, (tmp_path / "run1.log").read_text()
    assert_gone(pids)
    (key,) = [k for k, e in state_of(out)["runs"].items() if e["status"] == "interrupted"]
    meta = json.loads((out / state_of(out)["runs"][key]["record"] / "run.json").read_text())
    assert meta["outcome"] == "interrupted"  # the run kept what it measured
    assert statuses(out).count("pending") == 1

    proc = start(path, tmp_path / "run2.log")
    assert proc.wait(WAIT_S) == 0, (tmp_path / "run2.log").read_text()
    runs = state_of(out)["runs"]
    assert [e["status"] for e in runs.values()] == ["finished", "finished"]
    assert runs[key]["attempts"] == 2
    assert list((out / "interrupted").glob("**/run.json"))
    records = {e["version"]: str(out / e["record"]) for e in runs.values()}
    for version, rec in records.items():
        meta = json.loads((Path(rec) / "run.json").read_text())
        assert (meta["label"], meta["architecture"], meta["outcome"]) == (
            version,
            "large",
            "completed",
        )
        assert meta["parameters"]["users"] == 6
    status = run_cli("campaign", "status", str(path))
    assert status.returncode == 0
    assert status.stdout.startswith("campaign simh2: finished; 2 of 2 runs finished (2 finished)")
    assert "spent $0.00 of the planned $0.00" in status.stdout
    assert (
        run_cli(
            "campaign",
            "report",
            str(path),
            "--format",
            "json",
            "--out",
            str(tmp_path / "rep"),
            timeout=180,
        ).returncode
        == 0
    )
    (item, second) = json.loads((tmp_path / "rep" / "campaign.json").read_text())["comparisons"]
    assert item["previous_version"] is None and second["previous_version"] == "v1"
    cmp = run_cli("compare", records["v1"], records["v2"], "--format", "json", timeout=180)
    rows = json.loads(cmp.stdout)["rows"]
    assert second["worsened"] == sum(r["change"] == "worsened" for r in rows)
    assert second["improved"] == sum(r["change"] == "improved" for r in rows)


REAL = {
    "name": "esr-h2",
    "versions": [{"label": "esr-11.7", "mattermost": {"version": "11.7.1", "sha256": "ab" * 32}}],
    "architectures": [{"tier": 2000}],
    "repeats": 1,
    "budget_usd": 1,
}


def test_run_refuses_over_budget_and_bad_files_before_starting(tmp_path: Path) -> None:
    path = tmp_path / "real.yaml"
    path.write_text(yaml.safe_dump(REAL))
    res = run_cli("campaign", "run", str(path))
    assert res.returncode == 1 and res.stdout == ""
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith(f"mmload: error: {path}: budget_usd: the plan costs $")
    assert line.endswith("over the cap of $1.00: refused")
    assert not (tmp_path / "esr-h2-campaign").exists()  # nothing started

    sim = write_campaign(tmp_path)
    data = yaml.safe_load(sim.read_text())
    data["architectures"][1]["sim"]["pool_sise"] = 2
    sim.write_text(yaml.safe_dump(data))
    res = run_cli("campaign", "run", str(sim))
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip().splitlines() == [
        f"mmload: error: {sim}: architectures[1].sim.pool_sise: unknown field (check the spelling)"
    ]
    data["architectures"][1]["sim"] = {"users": 200}  # v1's profile has a pool: sizes only
    data["versions"][1] = {"label": "v2", "sim": {"profile": "v10.2"}}
    sim.write_text(yaml.safe_dump(data))
    for cmd in ("run", "status", "report"):
        res = run_cli("campaign", cmd, str(sim))
        assert res.returncode == 2 and res.stdout == ""
        assert res.stderr.strip().splitlines() == [
            f"mmload: error: {sim}: architectures[0].sim: a worker pool needs pool_size and "
            "service_ms (version v2's profile has no worker_pool)"
        ]
    assert not (tmp_path / "out").exists()
    data["architectures"][0]["sim"] = {"users": 200, "pool_size": 1, "service_ms": 20}
    sim.write_text(yaml.safe_dump(data))
    res = run_cli("campaign", "status", str(sim))
    assert res.returncode == 0 and res.stdout.startswith("campaign simh2: not started; 0 of 8")
    res = run_cli("campaign", "report", str(sim))
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        f"mmload: error: {sim}: has not run yet (no state in {tmp_path / 'out'}): "
        f"`mmload campaign run {sim}`"
    ]
