"""Any exception inside a real run ends it ``failed``: a real `mmload run` against `mmload sim`,
with a failure injected by a small locustfile plugin (the scenario's ``locustfile``, imported by
the run before it starts). run.json says ``failed`` with the error's type, message and time; the
rows measured before the failure are kept; the command prints one line and exits 1.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from mmload import record
from tests.load.conftest import run_dir_from, run_mmload, write_scenario

pytestmark = pytest.mark.slow

# Waits, ticking like the real driver, until the run has measured requests and flushed them as
# a part, notes how many it measured, then raises where the storm driver runs.
DRIVER_PLUGIN = """
import json
from pathlib import Path

from mmload.load import phases
from mmload.load.user import MattermostUser  # noqa: F401  (the run's users)


def exploding_storm(p, scenario, t0, schedule):
    p.enter("arrivals")
    p.set_users(scenario.users, phases.spawn_rate(scenario.users, schedule.duration_s))
    parts = p.status.run_dir / "requests"
    while not (p.status.live.total and list(parts.glob("part-*.parquet"))):
        if not p.wait_until(p.now() + 0.1):
            return
    Path(OUT).write_text(json.dumps({"measured": p.status.live.total}))
    raise ZeroDivisionError("injected by the test's plugin")


phases.DRIVERS["storm"] = exploding_storm
"""

# The record writer's second batch write fails as a disk with a bad sector does (EIO).
WRITER_PLUGIN = """
import errno

from mmload.load import recorder
from mmload.load.user import MattermostUser  # noqa: F401  (the run's users)

_write_batch = recorder.RecordWriter._write_batch
_calls = []


def failing_write_batch(self, batch):
    if batch["requests"]["timestamp"]:
        _calls.append(1)
        if len(_calls) >= 2:
            raise OSError(errno.EIO, "Input/output error (injected)")
    _write_batch(self, batch)


recorder.RecordWriter._write_batch = failing_write_batch
"""


def _scenario(tmp_path: Path, plugin: str) -> Path:
    (tmp_path / "plugin.py").write_text(plugin.replace("OUT", repr(str(tmp_path / "note.json"))))
    return write_scenario(
        tmp_path / "storm.yaml",
        name="failing",
        kind="storm",
        users=40,
        arrival_s=20,  # the failure comes with the first parts (~2 s in): users still pending
        hold_s=30,  # even when a busy machine flushes them late; the run ends at the failure
        actions=False,
        locustfile="plugin.py",
    )


def _one_error_line(stderr: str) -> str:
    """The command's only line on stderr (no traceback, no log lines)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mmload: error: "), stderr
    return lines[0]


def _failed_record(run_dir: Path) -> dict:
    meta = record.read_run(run_dir)
    assert meta["outcome"] == "failed" and "interrupted_detected_by_reader" not in meta
    started, failed_at, ended = (
        datetime.fromisoformat(meta[k].replace("Z", "+00:00"))
        for k in ("started_at", "failed_at", "ended_at")
    )
    assert started <= failed_at <= ended
    assert not list(run_dir.rglob("*.tmp")) and not (run_dir / ".reserve").exists()
    return meta


def test_an_exception_in_the_phase_driver_fails_the_run_and_keeps_the_rows(
    sim: str, tmp_path: Path
) -> None:
    f = _scenario(tmp_path, DRIVER_PLUGIN)
    res = run_mmload("run", str(f), "--target", sim, "--out", str(tmp_path / "runs"), timeout=180)
    assert res.returncode == 1, res.stdout + res.stderr
    line = _one_error_line(res.stderr)
    assert "ZeroDivisionError: injected by the test's plugin" in line
    run_dir = run_dir_from(res.stdout)
    meta = _failed_record(run_dir)
    assert meta["error"] == "ZeroDivisionError: injected by the test's plugin"
    measured = json.loads((tmp_path / "note.json").read_text())["measured"]
    rows = record.read_table(run_dir, record.REQUESTS).num_rows
    assert rows >= measured > 0  # everything measured before the failure is in the record
    # the users left: every scheduled user has its arrival row (the late ones pending)
    arrivals = record.read_table(run_dir, record.ARRIVALS).to_pandas()
    assert len(arrivals) == 40 and (arrivals["outcome"] == "pending").any()


def test_a_failed_record_write_fails_the_run_and_keeps_what_was_written(
    sim: str, tmp_path: Path
) -> None:
    f = _scenario(tmp_path, WRITER_PLUGIN)
    res = run_mmload("run", str(f), "--target", sim, "--out", str(tmp_path / "runs"), timeout=180)
    assert res.returncode == 1, res.stdout + res.stderr
    line = _one_error_line(res.stderr)
    assert "writing the run record failed: OSError: [Errno 5] Input/output error" in line
    run_dir = run_dir_from(res.stdout)
    meta = _failed_record(run_dir)
    assert meta["error"].startswith("writing the run record failed: OSError: [Errno 5]")
    # the first batch's part is kept (not compacted: the run stopped writing at the failure)
    parts = list((run_dir / "requests").glob("part-*.parquet"))
    assert len(parts) == 1
    assert record.read_table(run_dir, record.REQUESTS).num_rows > 0
    # the run stopped at the failure, long before its 30 s hold was over
    assert (
        meta["totals"]["arrivals"]["pending"] > 0
        or (
            datetime.fromisoformat(meta["ended_at"].replace("Z", "+00:00"))
            - datetime.fromisoformat(meta["started_at"].replace("Z", "+00:00"))
        ).total_seconds()
        < 30
    )
