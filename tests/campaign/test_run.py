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
            "start_users": 10,
            "step_users": 15,
            "min_step_users": 3,
            "remove_fraction": 0.15,
            "max_users": 70,
            "interval_s": 2,
            "settle_s": 0.5,
            "stable_intervals": 2,
            "stable_tolerance": 0.25,
            "spawn_rate": 50,
            "max_duration_s": 14,
        },
        "slos": {"p99_ms": 2000, "avg_ms": 60, "http_5xx_rate": None, "cpu_percent": None},
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
    """Until ``finished`` runs are finished and another one is running."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        got = statuses(out)
        if got.count("finished") >= finished and "running" in got:
            return
        assert proc.poll() is None, f"campaign run ended early ({proc.returncode}): {got}"
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

    # 1. SIGINT after the first finished run: the runs in progress stop and keep their data.
    proc = start(path, tmp_path / "run1.log")
    wait_for(out, 1, proc)
    pids = pids_of(out)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(120) == 130, (tmp_path / "run1.log").read_text()
    assert_gone(pids)
    first = finished_records(out)
    got = statuses(out)
    assert len(first) >= 1 and "running" not in got and "interrupted" in got, got
    for e in state_of(out)["runs"].values():
        if e["status"] == "interrupted" and e["record"]:
            assert json.loads((out / e["record"] / "run.json").read_text())["outcome"] in (
                "interrupted",
                "completed",
            )
    status = run_cli("campaign", "status", str(path), "--json")
    doc = json.loads(status.stdout)
    assert (doc["status"], doc["runs_total"], doc["runs_done"]) == ("interrupted", RUNS, len(first))
    assert doc["spent_usd"] == 0

    # 2. Resumed, then SIGKILLed: no simulator or run is left behind.
    proc = start(path, tmp_path / "run2.log")
    wait_for(out, len(first) + 1, proc)
    pids = pids_of(out)
    proc.kill()
    proc.wait(30)
    assert_gone(pids)
    second = finished_records(out)
    assert {k: second[k] for k in first} == first  # nothing finished was redone
    doc = json.loads(run_cli("campaign", "status", str(path), "--json").stdout)
    assert doc["status"].startswith("stopped") and doc["runs_done"] == len(second)
    assert doc["running"]  # as the killed process left it

    # 3. Resumed to the end.
    proc = start(path, tmp_path / "run3.log")
    assert proc.wait(WAIT_S * 2) == 0, (tmp_path / "run3.log").read_text()
    final = finished_records(out)
    assert len(final) == RUNS
    assert {k: final[k] for k in second} == second
    runs = state_of(out)["runs"]
    for key, e in runs.items():
        assert e["attempts"] == (1 if key in first else e["attempts"])
        assert e["attempts"] >= 1
    assert sum(e["attempts"] for e in runs.values()) > RUNS  # some were interrupted, re-run
    records = sorted(p.parent for p in (out / "runs").glob("**/run.json"))
    assert len(records) == RUNS  # one record per run: the interrupted attempts are set aside

    # 4. The report against a recomputation from the records themselves.
    rep = run_cli("campaign", "report", str(path), timeout=180)
    assert rep.returncode == 0, rep.stderr
    report_dir = out / "report"
    table = json.loads((report_dir / "campaign.json").read_text())
    assert table["complete"] and table["progress"] == {"finished": RUNS}
    metas = [json.loads((r / "run.json").read_text()) for r in records]
    groups: dict[tuple[str, str], list[float]] = {}
    for m in metas:
        assert m["outcome"] == "completed" and m["supported_users"] is not None
        groups.setdefault((m["architecture"], m["label"]), []).append(m["supported_users"])
    assert sorted(groups) == sorted((a, v) for a in ARCHS for v in VERSIONS)
    rows = {(r["architecture"], r["version"]): r for r in table["rows"]}
    assert set(rows) == set(groups)
    for key, values in groups.items():
        row = rows[key]
        assert row["runs"] == 2 and sorted(row["values"]) == sorted(values)
        assert row["mean"] == pytest.approx(sum(values) / len(values))
        assert (row["min"], row["max"]) == (min(values), max(values))
        assert row["stdev"] == pytest.approx(statistics.stdev(values))
    md = (report_dir / "campaign.md").read_text()
    html = (report_dir / "campaign.html").read_text()
    for (arch, version), values in groups.items():
        mean = f"{sum(values) / len(values):,.1f}"
        assert f"| {arch} | {version} | 2 | {mean} |" in md
        assert mean in html
    # The verdict v2 vs v1 is `mmload compare`'s over the same records.
    for arch in ARCHS:
        base = [
            str(r)
            for r, m in zip(records, metas, strict=True)
            if m["architecture"] == arch and m["label"] == "v1"
        ]
        new = [
            str(r)
            for r, m in zip(records, metas, strict=True)
            if m["architecture"] == arch and m["label"] == "v2"
        ]
        cmp = run_cli("compare", *base, *new, "--format", "json", timeout=180)
        assert cmp.returncode == 0, cmp.stderr
        users = json.loads(cmp.stdout)["supported_users"]
        verdict = rows[(arch, "v2")]["verdict"]
        assert verdict["verdict"] == users["verdict"]
        assert verdict["delta_pct"] == pytest.approx(users["delta_pct"])
        assert verdict["p_value"] == pytest.approx(users["p_value"])
        assert rows[(arch, "v1")]["verdict"] is None


def test_campaign_over_budget_or_bad_is_refused_before_starting(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, architectures=[{"name": "small", "sim": {"users": 0}}])
    res = run_cli("campaign", "run", str(path))
    assert res.returncode == 2 and res.stdout == ""
    assert (
        res.stderr.strip().splitlines()
        == [
            f"mmload: error: {path}: architectures[0].sim.users: Input should be between 1 and "
            "1000000"
        ]
        or "architectures[0].sim.users" in res.stderr
    )
    assert not (tmp_path / "out").exists()
