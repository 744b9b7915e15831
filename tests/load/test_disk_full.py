"""A full disk during a real run, on a small real tmpfs; the free-space check before a run.

The disk-full test is deterministic: it does not hope the run fills the disk by itself. It waits
until the run has written parts, then fills the tmpfs to the last byte itself, so the run's next
write fails (ENOSPC) whenever it comes, whichever write comes first (Locust's CSV writer, once a
second, usually; a failed part write takes the same path, see test_run_failures.py). The run
must then stop, keep every part written before, leave no temporary file and say ``failed``, why
and when, in run.json (written in the room of its reserve), printing one line and exiting 1.
Mounting needs root (this machine's tests run as root); every mount is unmounted in a
``finally``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import gevent
import pyarrow.parquet as pq
import pytest

from mmload import record
from mmload.config.scenario import Scenario
from mmload.errors import UserError
from mmload.load import diskspace
from mmload.load.collector import Collector
from mmload.load.phases import expected_s
from mmload.load.recorder import RecordWriter
from tests.conftest import MMLOAD
from tests.load.conftest import run_dir_from, run_mmload, wait_for_parts, write_scenario
from tests.load.fakes import Events

pytestmark = pytest.mark.slow

DISK_BYTES = 4 << 20
USERS = 40


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh 4 MiB tmpfs, unmounted after the test."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (the test needs root): {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _storm(tmp_path: Path, **extra: object) -> tuple[Path, Scenario]:
    fields: dict = {
        "name": "diskfull",
        "kind": "storm",
        "users": USERS,
        "arrival_s": 6,
        "hold_s": 30,
        "actions": False,
    }
    fields.update(extra)
    return write_scenario(tmp_path / "storm.yaml", **fields), Scenario(**fields)


def _fill(mnt: Path) -> int:
    """Write a file until the tmpfs has not one byte left; its size."""
    written = 0
    with (mnt / "filler").open("wb", buffering=0) as fh:
        for chunk in (1 << 16, 4096, 1):
            block = b"x" * chunk
            while True:
                try:
                    fh.write(block)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
                written += chunk
    return written


def _parts(run_dir: Path) -> dict[Path, int]:
    return {p: pq.read_metadata(p).num_rows for p in sorted(run_dir.glob("*/part-*.parquet"))}


def test_a_full_disk_fails_the_run_and_keeps_every_written_row(
    sim: str, tmp_path: Path, disk: Path
) -> None:
    f, _ = _storm(tmp_path)
    out = disk / "runs"
    proc = subprocess.Popen(
        [MMLOAD, "run", str(f), "--target", sim, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # the start can take several times its idle ~4 s on a busy machine; the 6 s + 30 s
        # run begins once it is ready, so this returns with most of it still to come
        run_dir = wait_for_parts(out, timeout=90.0, poll_s=0.05)
        filling = time.time()  # the run's next write may fail from here on
        assert _fill(disk) > 0  # written until ENOSPC (the run may free a page or two after:
        # a failed write removes its temporary file)
        filled_at = time.time()
        written = _parts(run_dir)  # nothing more can be written from here on
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, stdout + stderr
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mmload: error: "), stderr
    assert "[Errno 28] No space left on device" in lines[0] and str(run_dir) in lines[0]
    meta = record.read_run(run_dir)
    assert meta["outcome"] == "failed" and "interrupted_detected_by_reader" not in meta
    assert "failed: OSError: [Errno 28] No space left on device" in meta["error"]
    failed_at = datetime.fromisoformat(meta["failed_at"].replace("Z", "+00:00")).timestamp()
    assert filling - 1 <= failed_at <= time.time()
    # the run stopped at the failure: users gone well before its 6 s + 30 s were over
    ended = datetime.fromisoformat(meta["ended_at"].replace("Z", "+00:00")).timestamp()
    assert ended - filled_at < 15
    # every part written before the disk filled is still there, whole; nothing half-written
    after = _parts(run_dir)
    assert written and all(after.get(p) == n for p, n in written.items())
    assert record.read_table(run_dir, record.REQUESTS).num_rows >= sum(
        n for p, n in written.items() if p.parent.name == record.REQUESTS
    )
    assert not list(run_dir.rglob("*.tmp")) and not (run_dir / ".reserve").exists()
    for line in (run_dir / record.HDR_FILE).read_text().splitlines():
        json.loads(line)  # no torn line
    assert "outcome failed" in stdout or meta["totals"]["requests"] > 0


def test_the_estimate_bounds_a_real_record(sim: str, tmp_path: Path, disk: Path) -> None:
    """The free-space estimate (the measured BYTES_PER_ROW and the other constants) holds for a
    real run: the tmpfs's peak use stays under it, and not far under (so the check does not
    refuse runs that fit)."""
    f, scenario = _storm(tmp_path, users=100, arrival_s=3, hold_s=1)
    peak, done = [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], shutil.disk_usage(disk).used)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        res = run_mmload("run", str(f), "--target", sim, "--out", str(disk / "runs"), timeout=180)
    finally:
        done.set()
        watcher.join()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "disk space" not in res.stderr
    run_dir = run_dir_from(res.stdout)
    assert record.read_run(run_dir)["outcome"] == "completed"
    estimate = diskspace.estimate_bytes(scenario, 100, expected_s(scenario))
    assert peak[0] <= estimate, (peak[0], estimate)
    assert estimate <= 4 * peak[0], (peak[0], estimate)


def test_a_disk_clearly_too_small_refuses_the_run(sim: str, tmp_path: Path, disk: Path) -> None:
    f, _ = _storm(tmp_path, users=20_000, hold_s=3600)
    res = run_mmload("run", str(f), "--target", sim, "--out", str(disk / "runs"), timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.startswith("mmload: error: command line: --out: not enough disk space")
    assert len(res.stderr.splitlines()) == 1 and "Traceback" not in res.stderr
    assert not (disk / "runs").exists() or not list((disk / "runs").iterdir())  # nothing started


# ---------------------------------------------------------------- the check, as a unit


def _need(users: int = 100, hold_s: float = 60) -> tuple[Scenario, int]:
    s = Scenario(name="x", kind="storm", users=users, arrival_s=60, hold_s=hold_s, actions=False)
    return s, diskspace.estimate_bytes(s, users, expected_s(s))


def test_the_estimate_grows_with_users_duration_and_the_action_mix() -> None:
    s, base = _need()
    assert _need(users=1000)[1] > base and _need(hold_s=600)[1] > base
    busy = s.model_copy(update={"actions": True})
    assert diskspace.estimate_bytes(busy, 100, expected_s(s)) > base
    # the parts: more processes flush more files
    assert diskspace.estimate_bytes(s, 100, expected_s(s), processes=4) > base
    # it is rows x bytes per row, plus the per-file, CSV and reserve terms
    rows = diskspace.expected_rows(s, 100, expected_s(s))
    assert rows == int(100 * (diskspace.LOGIN_ROWS + 120 * diskspace.POLL_ROWS_PER_S))
    assert base > rows * diskspace.BYTES_PER_ROW + diskspace.RESERVE_BYTES


@pytest.mark.parametrize(
    ("free_fraction", "verdict"),
    [(10.0, None), (1.6, None), (1.4, "warn"), (0.6, "warn"), (0.4, "refuse"), (0.0, "refuse")],
)
def test_the_free_space_check_warns_then_refuses(
    tmp_path: Path, free_fraction: float, verdict: str | None
) -> None:
    need = 10 << 20
    free = int(need * free_fraction)
    out = tmp_path / "not" / "yet" / "runs"  # --out is created by the run: its parent is asked
    if verdict == "refuse":
        with pytest.raises(UserError) as exc:
            diskspace.check_free_space(out, need, free)
        line = exc.value.one_line()
        assert line.startswith("command line: --out: not enough disk space")
        assert f"{free / (1 << 20):,.1f} MiB free in {out}" in line and "10.0 MiB" in line
    else:
        got = diskspace.check_free_space(out, need, free)
        assert (got is None) == (verdict is None)
        if got:
            assert got.startswith("low disk space:") and "10.0 MiB" in got


def test_the_free_space_check_reads_the_disk_of_the_nearest_existing_folder(
    tmp_path: Path,
) -> None:
    free = shutil.disk_usage(tmp_path).free
    assert diskspace.check_free_space(tmp_path / "a" / "b", free // 4) is None
    with pytest.raises(UserError):
        diskspace.check_free_space(tmp_path / "a" / "b", free * 4)
    assert os.path.exists(tmp_path) and not (tmp_path / "a").exists()


# ---------------------------------------------------------------- the writer's failures, as units


def _writer(tmp_path: Path) -> tuple[RecordWriter, Collector, SimpleNamespace, list[str]]:
    run_dir = record.new_run_dir(tmp_path, "t")
    reasons: list[str] = []
    writer = RecordWriter(run_dir, {"outcome": "running"}, reasons.append)
    env = SimpleNamespace(events=Events())
    return writer, Collector(env, "w0", writer.ingest, 60), env, reasons


def _request(env: SimpleNamespace, i: int) -> None:
    env.events.request.fire(
        request_type="GET",
        name=f"GET /api/v4/n{i % 3}",
        response_time=5.0,
        response_length=1,
        exception=None,
        context={"user": "user-1"},
        start_time=1_800_000_000.0 + i,
        response=SimpleNamespace(status_code=200),
    )


def test_a_write_cut_short_leaves_whole_hdr_lines_and_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills in the middle of an hdr.jsonl append: the half line is cut off, the run's
    failure is reported once, nothing is written after it, the parts stay uncompacted."""
    writer, collector, env, reasons = _writer(tmp_path)
    for i in range(10):
        _request(env, i)
    collector.flush()
    writer.drain()
    hdr_path = writer.run_dir / record.HDR_FILE
    whole = hdr_path.read_bytes()
    assert whole.endswith(b"\n") and len(whole.splitlines()) == 3
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    for i in range(10, 20):
        _request(env, i)
    monkeypatch.setattr(os, "write", half_then_full)
    collector.flush()
    writer.drain()
    monkeypatch.undo()
    assert hdr_path.read_bytes() == whole  # the torn half is gone
    assert reasons == ["writing the run record failed: OSError: [Errno 28] No space left on device"]
    parts = _parts(writer.run_dir)
    for i in range(20, 30):  # after the failure nothing more is written
        _request(env, i)
    collector.stop()
    writer.drain()
    assert _parts(writer.run_dir).keys() == parts.keys()
    meta = writer.finish("failed", {"error": reasons[0]})
    assert meta["outcome"] == "failed" and meta["error"] == reasons[0] and meta["failed_at"]
    assert record.read_run(writer.run_dir)["outcome"] == "failed"
    # not compacted: the parts are the record (the failed batch's part came before its HDR lines)
    assert not (writer.run_dir / "requests.parquet").exists()
    assert record.read_table(writer.run_dir, record.REQUESTS).num_rows == 10 + 10
    assert not list(writer.run_dir.rglob("*.tmp")) and not (writer.run_dir / ".reserve").exists()


def test_a_failed_heartbeat_or_compaction_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, collector, _env, reasons = _writer(tmp_path)
    real = record.write_run_json
    monkeypatch.setattr(
        record, "write_run_json", lambda *a: (_ for _ in ()).throw(OSError(errno.EIO, "EIO"))
    )
    writer.start_heartbeat(every_s=0.01)
    gevent.sleep(0.05)
    monkeypatch.setattr(record, "write_run_json", real)
    assert reasons == ["writing run.json failed: OSError: [Errno 5] EIO"]
    assert writer._beat is not None and writer._beat.dead  # it stopped by itself, no traceback

    writer2, collector2, env2, _ = _writer(tmp_path / "2")
    _request(env2, 0)
    collector2.stop()
    monkeypatch.setattr(record, "compact", lambda *a: (_ for _ in ()).throw(OSError(28, "full")))
    meta = writer2.finish("completed", {})
    assert meta["outcome"] == "failed"
    assert meta["error"] == "compacting the run record failed: OSError: [Errno 28] full"
    assert record.read_table(writer2.run_dir, record.REQUESTS).num_rows == 1  # the part stays
    collector.stop()
    writer.finish("failed", {})
