"""Benchmark: `mmload report` over a run record of 10 million request rows.

Target (issue 4): the report, in all four formats, finishes in <= 30 s with <= 2 GiB peak memory
on 2 cores. The record is generated first through mmload/record.py (tests/report/synth.py):
a Sev0-shaped run of 20 minutes, 40 endpoint templates, 4 workers, 15,000 arrivals, 10 s
windows, and HDR histograms built from exactly the latencies of the rows. Then `mmload report`
runs as a subprocess; its wall time and the child's peak RSS (getrusage RUSAGE_CHILDREN) are
measured. The last line of stdout is one JSON object.

    .venv/bin/python bench/bench_report.py [--rows 10000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.report.synth import Spec, make_record  # noqa: E402

TARGET_S = 30.0
TARGET_RSS_MIB = 2048.0


def log(message: str) -> None:
    """Progress on stderr (stdout's last line is the result)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def generate(run_dir: Path, rows: int) -> float:
    """Write the record; return the seconds it took."""
    t0 = time.perf_counter()
    make_record(
        run_dir,
        Spec(rows=rows, duration_s=1200, workers=4, users=15_000, seed=42, rows_per_part=1_000_000),
    )
    return time.perf_counter() - t0


def time_report(run_dir: Path, out: Path) -> tuple[float, float, int]:
    """Run `mmload report` in all formats; (wall s, child peak RSS MiB, exit code)."""
    mmload = Path(sys.executable).with_name("mmload")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(mmload), "report", str(run_dir), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    wall = time.perf_counter() - t0
    if proc.returncode:
        log(proc.stderr.strip())
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB
    return wall, peak_kib / 1024.0, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--keep", metavar="DIR", help="keep (or reuse) the generated record in DIR")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mmload-bench-report-"))
    run_dir = work / "record"
    try:
        gen_s = 0.0
        if not (run_dir / "run.json").exists():
            log(f"generating {args.rows:,} request rows in {run_dir}")
            gen_s = generate(run_dir, args.rows)
        size_mb = sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file()) / 1e6
        hdr_lines = sum(1 for _ in (run_dir / "hdr.jsonl").open())
        log(f"record: {size_mb:.0f} MB, {hdr_lines:,} histograms; running mmload report")
        load_before = os.getloadavg()[0]
        wall, rss_mib, rc = time_report(run_dir, work / "report")
        outputs = {p.name: p.stat().st_size for p in (work / "report").glob("report.*")}
        result = {
            "bench": "report",
            "rows": args.rows,
            "hdr_histograms": hdr_lines,
            "record_mb": round(size_mb, 1),
            "generate_s": round(gen_s, 1),
            "report_wall_s": round(wall, 2),
            "report_peak_rss_mib": round(rss_mib, 1),
            "exit_code": rc,
            "outputs_bytes": outputs,
            "cpus": len(os.sched_getaffinity(0)),
            "loadavg_1m_before": round(load_before, 2),  # other work on the machine skews times
            "target_wall_s": TARGET_S,
            "target_rss_mib": TARGET_RSS_MIB,
            "ok": rc == 0 and wall <= TARGET_S and rss_mib <= TARGET_RSS_MIB,
        }
        print(json.dumps(result, sort_keys=True), flush=True)
        if not result["ok"]:
            sys.exit(1)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
