"""Real Locust against the real `mmload sim`: storms on schedule, workers, interrupts, actions.

Every run here is small (<= 200 users, <= 20 s) and sends traffic only to the simulator on
127.0.0.1 (free ports); every process started is stopped by its pid.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from mmload import hdr, record
from tests.conftest import MMLOAD
from tests.load.conftest import run_dir_from, run_mmload, wait_for_parts, write_scenario

pytestmark = pytest.mark.slow

STORM_USERS = 200
STORM_ARRIVAL_S = 10.0
INITIAL_LOAD = [  # the 11.x web app's (the default client profile)
    "GET /api/v4/config/client",
    "GET /api/v4/license/client",
    "POST /api/v4/users/login",
    "GET /api/v4/users/me",
    "GET /api/v4/users/me/preferences",
    "GET /api/v4/users/me/teams",
    "GET /api/v4/users/me/teams/members",
    "GET /api/v4/users/me/teams/unread",
    "GET /api/v4/limits/server",
    "GET /api/v4/plugins/webapp",
    "POST /api/v4/roles/names",
    "GET /api/v4/users/{user_id}/channel_members",
    "GET /api/v4/users/me/channels",
    "GET /api/v4/users/{user_id}/teams/{team_id}/channels/categories",
    "GET /api/v4/users/{user_id}/channels/{channel_id}/posts/unread",
    "GET /api/v4/channels/{channel_id}/stats",
    "POST /api/v4/channels/members/{user_id}/view",
    "WS /api/v4/websocket",
]


def _storm_file(tmp: Path, **extra: object) -> Path:
    fields = {
        "name": "storm-test",
        "kind": "storm",
        "users": STORM_USERS,
        "arrival_s": STORM_ARRIVAL_S,
        "hold_s": 2,
        "actions": False,  # logins only: the totals are deterministic, so runs compare exactly
        "slos": {"login_p99_ms": 2000, "error_rate": 0.01, "avg_ms": None},
    }
    fields.update(extra)
    return write_scenario(tmp / "storm.yaml", **fields)


def _run(scenario: Path, sim: str, out: Path, *flags: str) -> tuple[Path, dict]:
    """A run whose verdict must be PASS (exit 0: every SLO passed or optional-unmeasured);
    ``--no-fail-on-slo`` for runs that test the record, not the latencies."""
    res = run_mmload("run", str(scenario), "--target", sim, "--out", str(out), *flags)
    assert res.returncode == 0, res.stdout + res.stderr
    run_dir = run_dir_from(res.stdout)
    assert run_dir.parent == out
    return run_dir, record.read_run(run_dir)


@pytest.fixture(scope="module")
def storm(sim: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("storm")
    return _run(_storm_file(tmp), sim, tmp / "runs")


def _counts(run_dir: Path) -> dict[str, int]:
    df = record.read_table(run_dir, "requests", ["name"]).to_pandas()
    return df["name"].value_counts().to_dict()


def test_storm_completes_with_every_login_on_schedule(storm: tuple[Path, dict]) -> None:
    run_dir, meta = storm
    assert meta["outcome"] == "completed"
    assert meta["server_version"].startswith(("10.", "11."))
    arr = record.read_table(run_dir, "arrivals").to_pandas()
    assert len(arr) == STORM_USERS and arr["user"].nunique() == STORM_USERS
    assert (arr["outcome"] == "loaded").all() and arr["ws_connected"].notna().all()
    # the schedule: uniform, one arrival every arrival_s / users
    sched = arr["scheduled"].sort_values()
    gaps = sched.diff().dropna().dt.total_seconds()
    assert gaps.between(0.049, 0.051).all()
    # arrivals on schedule: actual starts lag the schedule by little, and per 1 s window the
    # number of starts matches the schedule (20 per second) within one
    assert arr["lag_ms"].quantile(0.99) < 250 and arr["lag_ms"].min() >= 0
    t0 = sched.iloc[0]
    started = ((arr["started"] - t0).dt.total_seconds() // 1).value_counts().sort_index()
    assert len(started) == 10
    assert ((started - 20).abs() <= 1).all(), started.to_dict()
    counts = _counts(run_dir)
    for name in INITIAL_LOAD:
        assert counts.get(name, 0) >= STORM_USERS, (name, counts)
    assert counts["POST /api/v4/users/login"] == STORM_USERS
    df = record.read_table(run_dir, "requests").to_pandas()
    assert df["error"].isna().all(), df[df["error"].notna()].head()
    assert set(df["worker"]) == {"local"}
    verdicts = {v["name"]: v["passed"] for v in meta["slos"] if not v["optional"]}
    assert verdicts == {"login_p99_ms": True, "p99_ms": True, "error_rate": True}
    # the server-side SLOs need --prometheus: unmeasured, and optional by default
    assert {v["name"] for v in meta["slos"] if v["optional"]} == {"http_5xx_rate", "cpu_percent"}
    assert all(v["passed"] is None for v in meta["slos"] if v["optional"])
    assert meta["totals"]["arrivals"]["loaded"] == STORM_USERS


def test_latency_recorded_as_service_time_and_from_the_schedule(storm: tuple[Path, dict]) -> None:
    run_dir, _ = storm
    df = record.read_table(run_dir, "requests").to_pandas()
    login = df[df["name"] == "POST /api/v4/users/login"]
    assert login["scheduled"].notna().all()  # the login flow carries its arrival's lag
    lines = list(hdr.iter_lines(run_dir))
    for name, group in df.groupby("name"):
        service = [r.histogram() for r in lines if r.name == name and r.kind == "service"]
        assert hdr.merge_histograms(service).get_total_count() == len(group), name
        corrected = [r.histogram() for r in lines if r.name == name and r.kind == "corrected"]
        n_sched = int(group["scheduled"].notna().sum())
        assert sum(h.get_total_count() for h in corrected) == n_sched, name
    csv = pd.read_csv(run_dir / "locust_stats.csv")
    row = (
        csv[csv["Name"] == "/api/v4/users/login"]
        if "/api/v4/users/login" in set(csv["Name"])
        else csv[csv["Name"] == "POST /api/v4/users/login"]
    )
    assert int(row["Request Count"].iloc[0]) == STORM_USERS


def test_two_workers_give_the_same_totals(
    storm: tuple[Path, dict], sim: str, tmp_path: Path
) -> None:
    run_dir, meta = _run(
        _storm_file(tmp_path), sim, tmp_path / "runs", "--workers", "2", "--no-fail-on-slo"
    )
    assert meta["outcome"] == "completed"
    assert _counts(run_dir) == _counts(storm[0])
    arr = record.read_table(run_dir, "arrivals").to_pandas()
    assert len(arr) == STORM_USERS and (arr["outcome"] == "loaded").all()
    assert sorted(arr["worker"].unique()) == ["w0", "w1"]
    assert arr.groupby("worker").size().to_dict() == {"w0": 100, "w1": 100}
    assert arr["lag_ms"].quantile(0.99) < 250
    # the HDR histograms of both workers merge exactly into the whole run's distribution
    df = record.read_table(run_dir, "requests").to_pandas()
    login = df[df["name"] == "POST /api/v4/users/login"]["latency_ms"]
    hists = [
        r.histogram()
        for r in hdr.iter_lines(run_dir)
        if r.name == "POST /api/v4/users/login" and r.kind == "service"
    ]
    assert {r.worker for r in hdr.iter_lines(run_dir)} == {"w0", "w1"}
    merged = hdr.merge_histograms(hists)
    assert merged.get_total_count() == len(login) == STORM_USERS
    assert merged.get_max_value() == pytest.approx(login.max() * 1000, rel=0.002)


def test_steady_runs_the_action_mix_with_template_names(sim: str, tmp_path: Path) -> None:
    f = write_scenario(
        tmp_path / "steady.yaml",
        name="steady-test",
        kind="steady",
        users=30,
        arrival_s=2,
        hold_s=6,
        idle={"min_ms": 50, "avg_ms": 250},
        websocket={"ping_interval_s": 0.5},
    )
    run_dir, meta = _run(f, sim, tmp_path / "runs", "--no-fail-on-slo")
    assert meta["outcome"] == "completed"
    counts = _counts(run_dir)
    assert counts["WS ping"] >= 30 * 5
    for name in (
        "POST /api/v4/posts",
        "GET /api/v4/users/{user_id}/teams/{team_id}/threads",
        "GET /api/v4/users/me/teams/unread",
        "GET /api/v4/channels/{channel_id}/stats",
    ):
        assert counts.get(name, 0) > 0, (name, counts)
    # SwitchChannel is the most frequent action: channel views dominate the initial load's one
    assert counts["POST /api/v4/channels/members/{user_id}/view"] > 3 * 30
    ids = re.compile(r"[a-z0-9]{26}")
    assert not [n for n in counts if ids.search(n)], "request names must be templates"
    df = record.read_table(run_dir, "requests").to_pandas()
    assert df["error"].notna().mean() < 0.01, df[df["error"].notna()]["error"].value_counts()
    pings = df[df["name"] == "WS ping"]
    assert (pings["status"] == 200).all() and pings["scheduled"].isna().all()


def _start_run(scenario: Path, sim: str, out: Path, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [MMLOAD, "run", str(scenario), "--target", sim, "--out", str(out), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (from /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def test_sigkill_leaves_a_readable_record_marked_interrupted(sim: str, tmp_path: Path) -> None:
    # a worker process starts in ~7 s alone and several times that on a busy machine (CI runs
    # three test modules at once): the arrival window opens once it is ready, so the wait for
    # the first parts covers the start (it returns as soon as they are there) and the long
    # window keeps the kill mid-run
    f = _storm_file(tmp_path, arrival_s=60, hold_s=10)
    out = tmp_path / "runs"
    proc = _start_run(f, sim, out, "--workers", "1")
    try:
        run_dir = wait_for_parts(out, timeout=90.0)
        assert record.read_run(run_dir)["outcome"] == "running"
        workers = _children(proc.pid)
        assert len(workers) == 1
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    # the orphaned local worker notices its master is gone and quits by itself (it looks once a
    # second); 30 s, half Locust's own 60 s master heartbeat timeout, which must not be what
    # ends it
    deadline = time.time() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.time() < deadline:
        time.sleep(0.2)
    leftover = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    for pid in leftover:
        os.kill(pid, signal.SIGKILL)
    assert not leftover, "the worker outlived its killed master"
    meta = record.read_run(run_dir)
    assert meta["outcome"] == "interrupted" and meta["interrupted_detected_by_reader"]
    reqs = record.read_table(run_dir, "requests")
    arrivals = record.read_table(run_dir, "arrivals")
    assert reqs.num_rows > 0 and 0 < arrivals.num_rows < STORM_USERS
    assert sum(r.count for r in hdr.iter_lines(run_dir)) > 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_cleanly_and_keeps_the_data(sim: str, tmp_path: Path, sig: int) -> None:
    # the signal comes as soon as parts are flushed, well before the run's end: the arrival
    # window opens once the run (and its worker: ~7 s alone, several times that on a busy
    # machine) is ready, so the wait for the first parts covers the start
    f = _storm_file(tmp_path, arrival_s=40, hold_s=10)
    out = tmp_path / "runs"
    proc = _start_run(f, sim, out, *(["--workers", "1"] if sig == signal.SIGTERM else []))
    try:
        run_dir = wait_for_parts(out, timeout=90.0)
        time.sleep(1.0)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    meta = record.read_run(run_dir)
    assert meta["outcome"] == "interrupted" and "interrupted_detected_by_reader" not in meta
    assert (run_dir / "requests.parquet").exists() and not (run_dir / "requests").exists()
    arr = record.read_table(run_dir, "arrivals").to_pandas()
    # every scheduled user has a row: those who had not arrived yet are pending
    assert len(arr) == STORM_USERS
    assert (arr["outcome"] == "pending").sum() > 50 and (arr["outcome"] == "loaded").sum() > 5
    assert arr[arr["outcome"] == "pending"]["scheduled"].notna().all()
    assert "outcome interrupted" in stdout


def test_custom_locustfile_extends_mattermost_user(sim: str, tmp_path: Path) -> None:
    (tmp_path / "lf.py").write_text(
        "from locust import task\n"
        "from mmload.load.user import MattermostUser\n\n\n"
        "class PingingUser(MattermostUser):\n"
        "    @task\n"
        "    def ping(self):\n"
        "        self.api('GET', '/system/ping', '/system/ping')\n"
    )
    f = write_scenario(
        tmp_path / "custom.yaml",
        name="custom",
        kind="steady",
        users=5,
        arrival_s=1,
        hold_s=1,
        actions=False,
        locustfile="lf.py",
        idle={"min_ms": 50, "avg_ms": 100},
    )
    run_dir, _meta = _run(f, sim, tmp_path / "runs", "--no-fail-on-slo")
    counts = _counts(run_dir)
    assert counts["GET /api/v4/system/ping"] > 5 and counts["POST /api/v4/users/login"] == 5


def test_reconnect_herd_reconnects_everyone_by_the_backoff_rule(sim: str, tmp_path: Path) -> None:
    f = write_scenario(
        tmp_path / "herd.yaml",
        name="herd-test",
        kind="herd",
        users=60,
        arrival_s=2,
        hold_s=1,
        actions=False,
        herd={"settle_s": 1, "outage_s": 4},
    )
    run_dir, meta = _run(f, sim, tmp_path / "runs", "--no-fail-on-slo")
    assert meta["outcome"] == "completed"
    arr = record.read_table(run_dir, "arrivals").to_pandas()
    rec = arr[arr["phase"] == "reconnect"]
    assert len(rec) == 60 and (rec["outcome"] == "loaded").all()
    drop = arr[arr["phase"] == "login"]["scheduled"].min() + pd.Timedelta(seconds=2 + 1)
    after = (rec["scheduled"] - drop).dt.total_seconds()
    # outage 4 s < 7 retries: each client is back on its first retry at or after 4 s, i.e.
    # within one retry period (3 s + 0-2 s jitter) of the outage's end
    assert after.between(4.0, 9.0).all(), after.describe()
    counts = _counts(run_dir)
    assert counts["WS /api/v4/websocket"] == 120
    assert meta["totals"]["reconnects"]["loaded"] == 60


def test_demo_runs_the_scaled_storm_end_to_end(tmp_path: Path) -> None:
    res = run_mmload("demo", "--scale", "0.005", "--hold", "1", "--out", str(tmp_path / "runs"))
    assert res.returncode == 0, res.stdout + res.stderr
    run_dir = run_dir_from(res.stdout)
    meta = record.read_run(run_dir)
    assert meta["outcome"] == "completed" and meta["scenario"]["name"] == "sev0-login-storm"
    assert meta["totals"]["arrivals"]["scheduled"] == 75
    assert "SLO login_p99_ms" in res.stdout and "simulator at http://127.0.0.1:" in res.stderr
    assert "SLO login_success_rate (client): 1 >= 0.99: PASS" in res.stdout
    assert "verdict: PASS" in res.stdout


def test_live_view_on_a_terminal(sim: str, tmp_path: Path) -> None:
    """Under a pseudo-terminal (`script`), `mmload run` shows the Rich live view."""
    f = write_scenario(
        tmp_path / "tty.yaml",
        name="tty-test",
        kind="storm",
        users=10,
        arrival_s=2,
        hold_s=1,
        actions=False,
    )
    cmd = f"{MMLOAD} run {f} --target {sim} --out {tmp_path / 'runs'} --no-fail-on-slo"
    res = subprocess.run(
        ["script", "-qec", cmd, "/dev/null"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    )
    assert res.returncode == 0, res.stdout[-2000:]
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", res.stdout)
    assert "mmload run tty-test (storm)" in plain  # the live table's title
    assert re.search(r"arrivals\s*│\s*\d+ of \d+ due", plain)
    assert "outcome completed" in plain


def test_plain_locust_runs_mattermost_user(sim: str, tmp_path: Path) -> None:
    """The contract for other locustfiles: import the class, run plain `locust`."""
    (tmp_path / "lf.py").write_text("from mmload.load.user import MattermostUser  # noqa: F401\n")
    locust = str(Path(MMLOAD).with_name("locust"))
    res = subprocess.run(
        [
            locust,
            "-f",
            str(tmp_path / "lf.py"),
            "--headless",
            "-u",
            "3",
            "-r",
            "3",
            "-t",
            "3s",
            "--host",
            sim,
            "--csv",
            str(tmp_path / "out"),
            "--only-summary",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    stats = pd.read_csv(tmp_path / "out_stats.csv").set_index("Name")
    assert stats.loc["POST /api/v4/users/login", "Request Count"] == 3
    assert stats.loc["WS /api/v4/websocket", "Failure Count"] == 0
