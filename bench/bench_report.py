"""Benchmark: `mmload report` over a run record of 100 million request rows.

Target (issue 11): a 100,000-user ceiling run's size, 100 M rows, reported in all four formats
in <= 60 s with <= 2 GiB peak memory on 2 cores (issue 4's figure, 10 M rows in <= 30 s, is
kept for comparison: ``--rows 10000000``). The record is generated first through
mmload/record.py and mmload/hdr.py (tests/report/synth.py): a Sev0-shaped run of 20 minutes, 40
endpoint templates, 4 workers, 15,000 arrivals, 10 s windows, and HDR histograms built from
exactly the latencies of the rows. Then `mmload report` runs as a subprocess; its wall time, CPU
time, the largest process's peak RSS (getrusage RUSAGE_CHILDREN) and the peak summed RSS of its
process tree (sampled) are measured, with the load average before and after (the machine is
shared). The last line of stdout is one JSON object.

    .venv/bin/python bench/bench_report.py [--rows 100000000] [--seconds 1200] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.report.synth import Spec, make_record  # noqa: E402

TARGET_RSS_MIB = 2048.0


def target_s(rows: int) -> float:
    """60 s for a 100 M-row record (issue 11); 30 s up to 10 M rows (issue 4)."""
    return 30.0 if rows <= 10_000_000 else 60.0


CPU_SECONDS = [0.0]  # user + system CPU of the report's processes (load-independent)


def log(message: str) -> None:
    """Progress on stderr (stdout's last line is the result)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def generate(run_dir: Path, rows: int, seconds: int) -> float:
    """Write the record; return the seconds it took."""
    t0 = time.perf_counter()
    make_record(
        run_dir,
        Spec(
            rows=rows, duration_s=seconds, workers=4, users=15_000, seed=42, rows_per_part=1_000_000
        ),
    )
    return time.perf_counter() - t0


def tree_rss(proc: psutil.Process) -> int:
    """RSS of a process and its descendants, in bytes (an upper bound: shared pages count twice)."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def time_report(run_dir: Path, out: Path) -> tuple[float, float, float, int]:
    """Run `mmload report` in all formats.

    Returns wall seconds, the largest single process's peak RSS (getrusage RUSAGE_CHILDREN,
    MiB), the peak summed RSS of the whole process tree sampled every 20 ms (MiB; the report
    decodes histograms in a helper process), and the exit code.
    """
    mmload = Path(sys.executable).with_name("mmload")
    t0 = time.perf_counter()
    child = subprocess.Popen(
        [str(mmload), "report", str(run_dir), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ps, peak_tree = psutil.Process(child.pid), 0
    while child.poll() is None:
        with contextlib.suppress(psutil.Error):
            peak_tree = max(peak_tree, tree_rss(ps))
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    err = child.stderr.read() if child.stderr else ""
    if child.returncode:
        log(err.strip())
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the report and its helper process
    CPU_SECONDS[0] = usage.ru_utime + usage.ru_stime
    return wall, usage.ru_maxrss / 1024.0, peak_tree / 2**20, child.returncode  # maxrss: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000_000)
    ap.add_argument("--seconds", type=int, default=1200, help="run length (10 s windows)")
    ap.add_argument("--keep", metavar="DIR", help="keep (or reuse) the generated record in DIR")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mmload-bench-report-"))
    run_dir = work / "record"
    try:
        gen_s = 0.0
        if not (run_dir / "run.json").exists():
            log(f"generating {args.rows:,} request rows in {run_dir}")
            gen_s = generate(run_dir, args.rows, args.seconds)
        size_mb = sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file()) / 1e6
        hdr_lines = sum(1 for _ in (run_dir / "hdr.jsonl").open())
        log(f"record: {size_mb:.0f} MB, {hdr_lines:,} histograms; running mmload report")
        load_before = os.getloadavg()[0]
        wall, rss_mib, tree_mib, rc = time_report(run_dir, work / "report")
        outputs = {p.name: p.stat().st_size for p in (work / "report").glob("report.*")}
        result = {
            "bench": "report",
            "rows": args.rows,
            "hdr_histograms": hdr_lines,
            "record_mb": round(size_mb, 1),
            "generate_s": round(gen_s, 1),
            "report_wall_s": round(wall, 2),
            "report_peak_rss_mib": round(rss_mib, 1),
            "report_peak_tree_rss_mib": round(tree_mib, 1),
            "report_cpu_s": round(CPU_SECONDS[0], 2),
            "exit_code": rc,
            "outputs_bytes": outputs,
            "cpus": len(os.sched_getaffinity(0)),
            "loadavg_1m_before": round(load_before, 2),  # other work on the machine skews times
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
            "target_wall_s": target_s(args.rows),
            "target_rss_mib": TARGET_RSS_MIB,
            "ok": rc == 0
            and wall <= target_s(args.rows)
            and max(rss_mib, tree_mib) <= TARGET_RSS_MIB,
        }
        print(json.dumps(result, sort_keys=True), flush=True)
        if not result["ok"]:
            sys.exit(1)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
