"""The recorder: rows and HDR histograms per flush, exact merging, compaction, dead writers."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import gevent
import pytest

from mmload import hdr, record
from mmload.load.collector import Collector, hdr_entry
from mmload.load.livestats import LiveStats
from mmload.load.recorder import RecordWriter
from tests.load.fakes import Events, FakeClock


def _fire(
    env,
    name: str,
    start: float,
    ms: float,
    lag: float | None = None,
    status: int = 200,
    exc: Exception | None = None,
    user: str = "user-1",
) -> None:
    env.events.request.fire(
        request_type=name.split()[0],
        name=name,
        response_time=ms,
        response_length=10,
        exception=exc,
        context={"user": user, "lag_s": lag},
        start_time=start,
        response=SimpleNamespace(status_code=status),
    )


def test_flushes_compacts_and_merges_exactly(tmp_path: Path) -> None:
    run_dir = record.new_run_dir(tmp_path, "t")
    writer = RecordWriter(run_dir, {"outcome": "running"})
    envs = [SimpleNamespace(events=Events()) for _ in range(2)]
    collectors = [Collector(e, f"w{i}", writer.ingest, 60) for i, e in enumerate(envs)]
    t0 = 1_800_000_000.0
    expected = hdr.new_histogram()
    for i in range(300):
        env = envs[i % 2]
        ms = 1 + (i * 7) % 250
        _fire(env, "GET /api/v4/users/me", t0 + i * 0.1, ms, lag=0.5 if i < 100 else None)
        expected.record_value(ms * 1000)
        if i == 150:  # two flushes per worker: two HDR lines per key before compaction
            for c in collectors:
                c.flush()
    _fire(envs[0], "POST /api/v4/users/login", t0, 5, status=401, exc=RuntimeError("HTTP 401 x"))
    collectors[0].add_arrival(
        {
            "user": "user-1",
            "scheduled": t0,
            "started": t0 + 0.002,
            "lag_ms": 2.0,
            "outcome": "loaded",
            "phase": "login",
        }
    )
    for c in collectors:
        c.stop()
    writer.drain()
    parts = list((run_dir / "requests").glob("part-*.parquet"))
    assert len(parts) == 4  # written while running: a killed run keeps them
    t = record.read_table(run_dir, "requests")
    assert t.num_rows == 301
    meta = writer.finish("completed", {})
    assert meta["outcome"] == "completed" and not (run_dir / "requests").exists()
    df = record.read_table(run_dir, "requests").to_pandas()
    assert len(df) == 301
    failed = df[df["error"].notna()].iloc[0]
    assert (failed["status"], failed["error"], failed["method"]) == (401, "HTTP 401 x", "POST")
    sched = df[df["scheduled"].notna()]
    assert len(sched) == 100
    lag = (sched["timestamp"] - sched["scheduled"]).dt.total_seconds()
    assert lag.round(6).eq(0.5).all()
    recs = [r for r in hdr.iter_lines(run_dir) if r.name == "GET /api/v4/users/me"]
    service = [r for r in recs if r.kind == "service"]
    keys = {(r.window_start, r.worker) for r in service}
    assert len(keys) == len(service)  # compaction: one line per key
    merged = hdr.merge_histograms([r.histogram() for r in service])
    assert merged.get_total_count() == 300
    for q in (50, 90, 99, 100):
        assert merged.get_value_at_percentile(q) == expected.get_value_at_percentile(q)
    corrected = [r for r in recs if r.kind == "corrected"]
    assert sum(r.histogram().get_total_count() for r in corrected) == 100
    arr = record.read_table(run_dir, "arrivals").to_pylist()
    assert arr[0]["worker"] == "w0" and arr[0]["phase"] == "login"


def test_a_dead_writer_reads_as_interrupted(tmp_path: Path) -> None:
    run_dir = record.new_run_dir(tmp_path, "t")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    meta = {"outcome": "running", "pid": proc.pid}
    record.write_run_json(run_dir, meta)
    assert record.read_run(run_dir)["outcome"] == "interrupted"
    record.write_run_json(run_dir, {"outcome": "running", "pid": os.getpid()})
    assert record.read_run(run_dir)["outcome"] == "running"
    assert json.loads((run_dir / "run.json").read_text())["outcome"] == "running"


def test_collector_flushes_every_flush_s_of_its_clock() -> None:
    """One batch per flush interval on virtual time (a fake clock), and one more on stop."""
    batches: list[dict] = []
    env = SimpleNamespace(events=Events())
    clock = FakeClock()
    c = Collector(env, "local", batches.append, 2.0, clock=clock)
    c.start()
    _fire(env, "GET /x", 1_800_000_000.0, 3)
    for _ in range(5):
        gevent.sleep(0)  # let the flush loop run: each of its sleeps yields once
    c.stop()
    assert len(clock.sleeps) >= 3 and set(clock.sleeps) == {2.0}
    # the loop flushed after every completed sleep; stop() flushed the rest
    assert len(batches) == len(clock.sleeps)
    assert clock.elapsed == 2.0 * len(clock.sleeps)
    assert [len(b["requests"]["timestamp"]) for b in batches] == [1] + [0] * (len(batches) - 1)
    assert env.events.request.listeners == []  # stop() unhooks the collector


def test_live_windows_use_whole_seconds_inside_the_range() -> None:
    live = LiveStats(keep_s=1e12)
    base = 1_800_000_000
    cols: dict[str, list] = {"timestamp": [], "name": [], "latency_ms": [], "error": []}
    cols["status"] = []
    for sec, lat, err, status in [
        (0, 1.0, None, 200),
        (1, 10.0, None, 200),
        (1, 30.0, "x", 429),
        (2, 20.0, None, 200),
        (3, 99.0, None, 200),
    ]:
        cols["timestamp"].append((base + sec) * 1_000_000 + 500_000)
        cols["name"].append("WS ping" if lat == 99.0 else "GET /x")
        cols["latency_ms"].append(lat)
        cols["error"].append(err)
        cols["status"].append(status)
    live.add_requests(cols)
    w = live.window(base + 0.5, base + 3.0)  # seconds 1 and 2 only
    assert (w["count"], w["errors"], w["avg_ms"]) == (3, 1, 20.0)
    assert w["classes"] == {"rate_limited": 1}
    # percentiles by the HDR rule (mmload.hdr): the highest value equivalent to 30 ms
    assert w["p99_ms"] == hdr.percentiles_ms(hdr.of_values_ms([10.0, 30.0, 20.0]))["p99_ms"]
    assert w["p99_ms"] == pytest.approx(30.0, rel=1e-3)
    ok = live.window(base + 0.5, base + 3.0, ok_only=True)  # the failed 30 ms left out
    assert (ok["count"], ok["errors"]) == (2, 0) and ok["p99_ms"] == pytest.approx(20.0, rel=1e-3)
    assert live.window(base, base + 4, exclude=("WS ping",))["count"] == 4
    assert live.window(base, base + 4, only="WS ping")["p50_ms"] == pytest.approx(99.0, rel=1e-3)
    assert live.answered == 5 and live.first_error == "GET /x: x"


def test_batch_histograms_count_exactly_what_per_value_recording_counts() -> None:
    """The collector builds and encodes each batch's histograms with numpy: the counts, the
    encoding and every percentile are those of hdrh's own record_value for every raw value,
    out-of-range values dropped alike."""
    rng = random.Random(3)
    values = [max(1, int(rng.lognormvariate(8, 3))) for _ in range(50_000)]
    values += [1, 2047, 2048, 2049, 4095, 4096, 10**9, hdr.HIGHEST_US, 10**13]
    reference = hdr.new_histogram()
    for v in values:
        reference.record_value(v)
    win, name, kind, encoded, count = hdr_entry((60, "GET /x", "service"), values)
    assert (win, name, kind) == (60, "GET /x", "service")
    assert encoded == hdr.encode(reference)
    assert list(hdr.Line(win, name, "w", kind, count, encoded).histogram().counts) == list(
        reference.counts
    )
    assert count == reference.get_total_count() == len(values) - 1  # 10**13 µs is dropped
