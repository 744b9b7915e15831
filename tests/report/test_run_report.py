"""`mmload report` over run records written through mmload/record.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pyarrow.compute as pc
import pytest
from scipy import stats

from mmload import hdr, record
from mmload.report.runs import build_run_report
from tests.conftest import run_cli
from tests.report.conftest import Cli, load_in_chromium
from tests.report.synth import LOGIN, Spec, make_record


def expected_percentile_ms(latency_ms: np.ndarray, p: float) -> float:
    """Independently: HDR's percentile rule on the raw rows, via HdrHistogram's own bucket math."""
    h = hdr.new_histogram()
    values = np.sort(np.maximum(np.rint(latency_ms * 1000).astype(np.int64), 1))
    target = max(int(p * len(values) / 100 + 0.5), 1)
    return h.get_highest_equivalent_value(int(values[target - 1])) / 1000.0


def test_endpoint_figures_agree_with_rows(records: dict[str, Path]) -> None:
    run = records["sev0"]
    rep = build_run_report(run)
    rows = record.read_table(run, "requests", columns=["name", "latency_ms", "error", "status"])
    names = rows["name"].to_numpy(zero_copy_only=False)
    lat = rows["latency_ms"].to_numpy()
    errors = pc.is_valid(rows["error"]).to_numpy(zero_copy_only=False)
    assert rep.endpoints["count"].sum() == rows.num_rows == 30_000
    assert len(rep.endpoints) == 40
    for r in rep.endpoints.itertuples():
        sel = names == r.name
        assert r.count == sel.sum() and r.errors == errors[sel].sum()
        assert r.mean_ms == pytest.approx(lat[sel].mean())
        for p in (50, 90, 95, 99):
            assert getattr(r, f"p{p}_ms") == expected_percentile_ms(lat[sel], p), (r.name, p)
        assert r.max_ms == expected_percentile_ms(lat[sel], 100)
    assert rep.windows["count"].sum() == rows.num_rows
    assert rep.endpoint_windows["count"].sum() == rows.num_rows
    login = rep.endpoints.set_index("name").loc[LOGIN]
    assert login["status_429"] == ((names == LOGIN) & (rows["status"].to_numpy() == 429)).sum() > 0
    assert login["p99_corrected_ms"] > login["p99_ms"]


def test_vectorised_percentiles_match_hdrhistogram(records: dict[str, Path]) -> None:
    """hdr.percentiles_ms on merged sparse histograms == HdrHistogram on hdr.merge_histograms."""
    by_name: dict[str, list] = {}
    for ln in hdr.iter_lines(records["sev0"]):
        if ln.kind == "service":
            by_name.setdefault(ln.name, []).append(ln.histogram())
    for name in list(by_name)[:5]:
        merged = hdr.merge_histograms(by_name[name])
        ours = hdr.percentiles_ms(hdr.merge(hdr.sparse_of(h) for h in by_name[name]))
        for p in (50, 90, 95, 99):
            assert ours[f"p{p}_ms"] == merged.get_value_at_percentile(p) / 1000.0
        assert ours["max_ms"] == merged.get_max_value() / 1000.0


def test_report_writes_four_formats(records: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = run_cli("report", str(records["sev0"]), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "report.html",
        "report.json",
        "report.junit.xml",
        "report.md",
    ]
    doc = json.loads((out / "report.json").read_text())
    assert doc["schema"] == "mmload.report/1" and doc["run"]["requests"] == 30_000
    assert doc["slo_summary"] == {"passed": 1, "failed": 1, "unmeasured": 1}
    assert doc["sev0"]["arrivals"] == 200 and doc["sev0"]["login_429"] > 0
    assert 0.9 < doc["sev0"]["login_success"] < 1.0
    assert len(doc["windows"]) == 12 and doc["windows"][0]["spawned_users"] >= 1
    assert doc["verdict"]["status"] == "FAIL" and len(doc["verdict"]["reasons"]) == 2
    md = (out / "report.md").read_text()
    for heading in (
        "## SLO verdicts: 1 passed, 1 failed, 1 not measured",
        "## Endpoints",
        "## Sev0 login storm",
        "## Errors by kind",
        "## Over time (10 s windows)",
    ):
        assert heading in md
    assert "| error_rate | share of failed requests | <= 0.001 | 0.012 | client | FAIL |" in md
    suite = ET.parse(out / "report.junit.xml").getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"run.outcome", "slo.login_p99_ms", "slo.error_rate", "slo.app_cpu_p95"}
    assert cases["slo.error_rate"].find("failure") is not None
    # not measured is never a pass: a failure (it would be skipped only if marked optional)
    assert "could not be measured" in cases["slo.app_cpu_p95"].find("failure").get("message")
    assert cases["slo.login_p99_ms"].find("failure") is None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "2", "0")


def test_one_format_goes_to_stdout(cli: Cli, records: dict[str, Path]) -> None:
    res = cli("report", str(records["sev0"]), "--format", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["run"]["outcome"] == "completed"


def test_live_run_with_parts_only(cli: Cli, tmp_path: Path) -> None:
    """A run still going: rows only in requests/part-*.parquet, fresh heartbeat."""
    run = make_record(
        tmp_path / "live",
        Spec(rows=9_000, duration_s=60, outcome="running", compact=False, rows_per_part=2_000),
    )
    assert len(list((run / "requests").glob("part-*.parquet"))) > 1
    assert not (run / "requests.parquet").exists()
    res = cli("report", str(run), "-f", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["run"]["outcome"] == "running" and doc["run"]["requests"] == 9_000
    assert sum(e["count"] for e in doc["endpoints"]) == 9_000
    assert all(e["p99_ms"] is not None for e in doc["endpoints"])


def test_fail_on_slo_gates_after_writing(cli: Cli, records: dict[str, Path]) -> None:
    res = cli("report", str(records["sev0"]), "--format", "junit", "--fail-on-slo")
    assert res.returncode == 1
    assert ET.fromstring(res.stdout).get("failures") == "2"  # the report was still written
    assert res.stderr.startswith("mmload: error: FAIL: error_rate failed: measured 0.012")
    assert "app_cpu_p95 (app CPU) could not be measured" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_interrupted_run_is_reported_as_such(cli: Cli, tmp_path: Path) -> None:
    run = make_record(tmp_path / "dead", Spec(rows=2_000, duration_s=30, outcome="running"))
    # the writer "died": a pid that is certainly gone on this host
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    meta = json.loads((run / "run.json").read_text())
    meta["pid"] = dead.pid
    (run / "run.json").write_text(json.dumps(meta))
    res = cli("report", str(run), "--format", "junit")
    assert res.returncode == 0, res.stderr
    outcome = ET.fromstring(res.stdout).find("testsuite/testcase[@name='run.outcome']")
    assert "interrupted" in outcome.find("failure").get("message")
    md = cli("report", str(run)).stdout
    assert "| outcome | interrupted |" in md and "figures cover what was recorded" in md


@pytest.mark.slow
def test_html_renders_in_headless_chromium(records: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "html"
    res = run_cli("report", str(records["sev0"]), "--out", str(out), "--format", "html")
    assert res.returncode == 0, res.stderr
    page = out / "report.html"
    text = page.read_text()
    # opens offline: no external script, stylesheet or image (plotly.js is inlined)
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", text)
    seen = load_in_chromium(page, tmp_path)
    assert seen.returncode == 0
    assert seen.console == [], seen.console
    assert seen.attr("data-js-errors") is None
    drawn = seen.figures()
    assert set(drawn) == {
        "arrivals",
        "logins",
        "login-latency",
        "errors",
        "websocket",
        "users",
        "latency",
        "throughput",
        "endpoint-p99",
    }
    assert all(nonzero > 0 for _t, _p, nonzero in drawn.values()), drawn
    assert seen.attr("data-plots-rendered") == str(len(drawn))
    assert seen.banner() == "FAIL"

    # Control: the same check must notice a page whose script breaks.
    broken = tmp_path / "broken.html"
    broken.write_text(
        text.replace("</body>", "<script>Plotly.newPlot(undefined_div)</script></body>")
    )
    bad = load_in_chromium(broken, tmp_path)
    assert bad.console and bad.attr("data-js-errors")


def test_compare_mmload_repeats_pools_histograms(cli: Cli, records: dict[str, Path]) -> None:
    res = cli("compare", str(records["base"]), str(records["new"]), "-f", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    u = doc["supported_users"]
    base, new = [10_000, 10_150, 9_900], [8_000, 8_100, 7_950]
    assert u["verdict"] == "regressed" and "Welch" in u["method"]
    assert u["p_value"] == pytest.approx(stats.ttest_ind(new, base, equal_var=False).pvalue)
    assert u["delta_pct"] == pytest.approx((np.mean(new) - np.mean(base)) / np.mean(base) * 100)
    # p99 of one endpoint over the three repeats == HDR percentile of all their rows together
    name = "GET /api/v4/users/me"
    lat = {}
    for side in ("base", "new"):
        parts = [
            record.read_table(d, "requests", columns=["name", "latency_ms"])
            for d in sorted(records[side].iterdir())
        ]
        lat[side] = np.concatenate(
            [t.filter(pc.equal(t["name"], name))["latency_ms"].to_numpy() for t in parts]
        )
    rows = {(r["name"], r["stat"]): r for r in doc["rows"]}
    assert rows[(name, "p99")]["base"] == expected_percentile_ms(lat["base"], 99)
    assert rows[(name, "p99")]["new"] == expected_percentile_ms(lat["new"], 99)
    assert rows[(name, "avg")]["base"] == pytest.approx(lat["base"].mean())
    assert rows[(name, "avg")]["change"] == "worsened"  # every latency is 1.5x
    assert all(r["kind"] == "api" for r in doc["rows"])


def test_ceiling_over_mmload_records(cli: Cli, records: dict[str, Path], tmp_path: Path) -> None:
    res = cli(
        "ceiling",
        str(records["base"]),
        str(records["new"]),
        "--out",
        str(tmp_path),
        "--format",
        "json,md",
    )
    assert res.returncode == 0, res.stderr
    rows = json.loads((tmp_path / "ceiling.json").read_text())
    assert [(r["architecture"], r["label"], r["runs"]) for r in rows] == [
        ("2xl", "10.11.17", 3),
        ("2xl", "11.7.1", 3),
    ]
    assert rows[0]["mean"] == pytest.approx(np.mean([10_000, 10_150, 9_900]))
    assert rows[0]["stdev"] == pytest.approx(np.std([10_000, 10_150, 9_900], ddof=1))
    assert rows[1]["delta_pct_vs_previous"] == pytest.approx(
        (np.mean([8_000, 8_100, 7_950]) / np.mean([10_000, 10_150, 9_900]) - 1) * 100
    )
    assert "## Trend across labels" in (tmp_path / "ceiling.md").read_text()


def test_unwritable_out_is_a_user_error(cli: Cli, records: dict[str, Path], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = cli("report", str(records["sev0"]), "--out", str(blocker / "sub"))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert str(blocker / "sub") in res.stderr


def test_run_without_requests_reports_empty_tables(cli: Cli, tmp_path: Path) -> None:
    run = tmp_path / "empty-run"
    run.mkdir()
    record.write_run_json(run, {"run_id": "empty-run", "outcome": "failed", "scenario": "steady"})
    res = cli("report", str(run), "-f", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["run"]["requests"] == 0 and doc["endpoints"] == []


@pytest.mark.parametrize("damage", ["truncated parquet", "garbage histogram"])
def test_damaged_record_is_one_line_exit_2(cli: Cli, damage: str, tmp_path: Path) -> None:
    run = make_record(tmp_path / "run", Spec(rows=2_000, duration_s=30, sev0=False))
    if damage == "truncated parquet":
        data = (run / "requests.parquet").read_bytes()
        (run / "requests.parquet").write_bytes(data[: len(data) // 2])
    else:
        with (run / "hdr.jsonl").open("a") as fh:
            fh.write(
                json.dumps(
                    {
                        "window_start": 0,
                        "name": "x",
                        "worker": "w",
                        "kind": "service",
                        "count": 1,
                        "hist": "Z2FyYmFnZQ==",
                    }
                )
                + "\n"
            )
    res = cli("report", str(run))
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith(f"mmload: error: {run}: damaged run record: ")
    assert len(res.stderr.strip().splitlines()) == 1


def test_compare_sides_as_the_shell_expands_them(
    cli: Cli, records: dict[str, Path], tmp_path: Path
) -> None:
    """`mmload compare runs/*-a runs/*-b`: the shell passes six run folders; they are split
    where the label changes. A quoted pattern is expanded by mmload itself."""
    folders = cli("compare", str(records["base"]), str(records["new"]), "-f", "json")
    paths = sorted(map(str, records["base"].iterdir())) + sorted(map(str, records["new"].iterdir()))
    expanded = cli("compare", *paths, "-f", "json")
    pattern = cli("compare", f"{records['base']}/base-*", f"{records['new']}/new-*", "-f", "json")
    for res in (folders, expanded, pattern):
        assert res.returncode == 0, res.stderr
    docs = [json.loads(r.stdout) for r in (folders, expanded, pattern)]
    assert docs[0]["rows"] == docs[1]["rows"] == docs[2]["rows"]
    assert docs[1]["base"]["label"] == ["10.11.17"] and docs[1]["new"]["label"] == ["11.7.1"]
    nothing = cli("compare", f"{records['base']}/nope-*", str(records["new"]))
    assert nothing.returncode == 2 and "no file or directory matches" in nothing.stderr
    mixed = cli("compare", *paths, paths[0])
    assert mixed.returncode == 2 and "labels in turn" in mixed.stderr


def test_compare_sides_samples_and_out_alone(
    cli: Cli, records: dict[str, Path], tmp_path: Path
) -> None:
    res = cli(
        "compare",
        str(records["base"]),
        str(records["new"]),
        "--out",
        str(tmp_path),
        "--min-samples",
        "400",
    )
    assert res.returncode == 0, res.stderr
    # --out alone writes every format compare has (it has no JUnit)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "compare.html",
        "compare.json",
        "compare.md",
    ]
    doc = json.loads((tmp_path / "compare.json").read_text())
    base = doc["sides"]["base"]
    assert base["runs"] == 3 and base["requests"] == 18_000
    assert 0 < base["error_rate"] < 0.02 and base["verdicts"] == {"FAIL": 3}
    assert base["slos"]["error_rate"] == {"pass": 0, "fail": 3, "unmeasured": 0}
    rows = doc["rows"]
    few = [r for r in rows if r["change"] == "few_samples"]
    assert few and all(min(r["base_count"], r["new_count"]) < 400 for r in few)
    judged = [r for r in rows if r["change"] in ("worsened", "improved")]
    assert judged and all(min(r["base_count"], r["new_count"]) >= 400 for r in judged)
    md = (tmp_path / "compare.md").read_text()
    assert "## Too few samples to compare (under 400 requests on a side)" in md
    assert "| base | 3 | 18,000 |" in md


def test_ceiling_reports_and_skips_a_damaged_record(
    cli: Cli, records: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    tree = tmp_path / "tree"
    shutil.copytree(records["base"], tree / "base")
    broken = tree / "base" / "zz-broken"
    broken.mkdir()
    (broken / "run.json").write_bytes(b"\xff\xfe\x00garbage")
    bad_type = tree / "base" / "zz-bad-type"
    shutil.copytree(records["base"] / "base-1", bad_type)
    meta = json.loads((bad_type / "run.json").read_text())
    meta["slos"][0]["passed"] = "yes"
    (bad_type / "run.json").write_text(json.dumps(meta))
    res = cli("ceiling", str(tree), "-f", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [(r["label"], r["runs"]) for r in rows] == [("10.11.17", 3)]
    assert f"{broken / 'run.json'}: not UTF-8 text" in res.stderr
    assert f"{bad_type / 'run.json'}: slos[0].passed: " in res.stderr
    # report refuses the same records with one line, exit 2
    for path in (broken, bad_type):
        one = cli("report", str(path))
        assert one.returncode == 2 and len(one.stderr.strip().splitlines()) == 1, one.stderr


def test_record_with_arrivals_but_no_requests(cli: Cli, tmp_path: Path) -> None:
    """A run whose target answered nothing: arrivals (all failed), no request rows."""
    import pyarrow as pa

    run = tmp_path / "nothing-answered"
    run.mkdir()
    t0 = 1_795_176_000_000_000
    n = 5
    ts = pa.timestamp("us", tz="UTC")
    arrivals = pa.table(
        {
            "user": [f"u{i}" for i in range(n)],
            "worker": ["local"] * n,
            "scheduled": pa.array([t0 + i * 1_000_000 for i in range(n)], type=ts),
            "started": pa.array([t0 + i * 1_000_000 + 500 for i in range(n)], type=ts),
            "lag_ms": [0.5] * n,
            "logged_in": pa.array([None] * n, type=ts),
            "loaded": pa.array([None] * n, type=ts),
            "ws_connected": pa.array([None] * n, type=ts),
            "outcome": ["failed"] * n,
            "error": ["connection refused"] * n,
            "phase": ["login"] * n,
        },
        schema=record.ARRIVAL_SCHEMA,
    )
    record.write_part(run, record.ARRIVALS, "local", 0, arrivals)
    record.write_run_json(
        run,
        {
            "run_id": run.name,
            "scenario": {"name": "sev0-login-storm", "kind": "storm"},
            "outcome": "completed",
            "started_at": "2026-11-20T12:00:00Z",
            "ended_at": "2026-11-20T12:00:20Z",
            "slos": [
                {
                    "name": "login_p99_ms",
                    "op": "<",
                    "threshold": 2000,
                    "value": None,
                    "passed": None,
                }
            ],
        },
    )
    out = tmp_path / "out"
    res = cli("report", str(run), "--out", str(out))
    assert res.returncode == 0, res.stderr
    doc = json.loads((out / "report.json").read_text())
    assert doc["run"]["requests"] == 0 and doc["endpoints"] == []
    assert doc["verdict"]["status"] == "FAIL"  # unmeasured is not a pass
    assert doc["sev0"]["arrivals"] == 5 and doc["sev0"]["failed"] == 5
    assert "the record holds no requests" in (out / "report.md").read_text()
