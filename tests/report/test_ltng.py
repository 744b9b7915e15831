"""The reporter against Mattermost's own published data (ceiling-tests/v2, ltng report JSON)."""

from __future__ import annotations

import gzip
import json
import math
import re
import shutil
from pathlib import Path

import pytest
from scipy import stats

from tests.conftest import run_cli
from tests.report.conftest import Cli

# README row name (`**2XL.552**`) -> folder name (`ct2XL552`).
ROW = re.compile(r"^\|\s*\*\*(\d*XL|L)\.(\d{3})\*\*\s*\|(.*)\|\s*$")


def published_ceiling(readme: str) -> dict[str, int]:
    """Architecture -> published average supported users, from the README's result tables."""
    out = {}
    for line in readme.splitlines():
        m = ROW.match(line.strip())
        if not m:
            continue
        cells = [c.strip() for c in m.group(3).split("|")]
        users = next(c for c in cells if re.fullmatch(r"\*\*\d+\*\*", c))
        out[f"ct{m.group(1)}{m.group(2)}"] = int(users.strip("*"))
    return out


def test_ceiling_reproduces_published_supported_users(mpr: Path, tmp_path: Path) -> None:
    v2 = mpr / "ceiling-tests" / "v2"
    published = published_ceiling((v2 / "README.md").read_text(encoding="utf-8"))
    assert len(published) == 16  # L x3, XL x2, 2XL x6, 4XL x5

    res = run_cli("ceiling", str(v2), "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    ours = {r["architecture"]: r for r in rows}
    assert set(ours) == set(published)
    for arch, users in published.items():
        row = ours[arch]
        assert row["runs"] == 3 and row["label"] == "9.5.7", row
        # The README publishes the average of the three runs as a whole number, inconsistently:
        # where truncating and rounding differ, 7 rows truncate (2XL.220: 29504.67 -> 29504) and
        # 4 round (L.110: 216.67 -> 217). Either way: the integer part or the nearest integer.
        assert users in (math.floor(row["mean"]), round(row["mean"])), (arch, users, row["mean"])
        assert row["min"] <= row["mean"] <= row["max"]
        assert {"architecture", "label", "runs", "mean", "min", "max", "stdev"} <= set(row)


def test_ceiling_html_is_one_offline_page_with_a_plot(cli: Cli, mpr: Path, tmp_path: Path) -> None:
    # (The page machinery is shared with `mmload report`, whose page test_run_report.py loads in
    # headless Chromium; here the structure is checked.)
    res = cli("ceiling", str(mpr / "ceiling-tests" / "v2"), "--out", str(tmp_path), "-f", "html")
    assert res.returncode == 0, res.stderr
    page = (tmp_path / "ceiling.html").read_text()
    assert page.count("data-figure=") == 1 and "Plotly.newPlot" in page
    assert page.count("<tr>") == 16 + 1  # one row per architecture, plus the header
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)


def test_ceiling_includes_runs_whose_report_is_empty(cli: Cli, mpr: Path) -> None:
    # ct4XL550-1.out.gz and ct4XL552-1.out.gz are empty gzips; results.txt still has the users.
    res = cli("ceiling", str(mpr / "ceiling-tests" / "v2" / "ct4XL550"), "-f", "json")
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["run_names"] == ["ct4XL550-1", "ct4XL550-2", "ct4XL550-3"]
    assert row["values"] == [94973, 93844, 92609]


def raw_times(path: Path) -> dict[tuple[str, str, str], float]:
    """(kind, name, stat) -> milliseconds, straight from an ltng report's JSON."""
    data = json.loads(gzip.decompress(path.read_bytes()))
    keys = {
        ("store", "avg"): "AvgStoreTimes",
        ("store", "p99"): "P99StoreTimes",
        ("api", "avg"): "AvgAPITimes",
        ("api", "p99"): "P99APITimes",
    }
    return {
        (kind, name, stat): float(v) * 1000
        for (kind, stat), key in keys.items()
        for name, v in data[key].items()
    }


def test_compare_matches_raw_json(mpr: Path, tmp_path: Path) -> None:
    v2 = mpr / "ceiling-tests" / "v2"
    base_file = v2 / "ctXL220" / "ctXL220-1" / "ctXL220-1.out.gz"
    new_file = v2 / "ct2XL220" / "ct2XL220-1" / "ct2XL220-1.out.gz"
    res = run_cli("compare", str(base_file), str(new_file), "-f", "json,html", "-o", str(tmp_path))
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "compare.json").read_text())
    page = (tmp_path / "compare.html").read_text()
    assert page.count("data-figure=") == 4  # API and store, avg and p99 changes
    base, new = raw_times(base_file), raw_times(new_file)
    rows = {(r["kind"], r["name"], r["stat"]): r for r in doc["rows"]}
    assert set(rows) == set(base) | set(new)
    checked = 0
    for key in set(base) & set(new):
        r = rows[key]
        assert r["base"] == pytest.approx(base[key], rel=1e-12)
        assert r["new"] == pytest.approx(new[key], rel=1e-12)
        assert r["delta"] == pytest.approx(new[key] - base[key], rel=1e-9, abs=1e-9)
        if base[key]:
            want = (new[key] - base[key]) / base[key] * 100
            assert r["delta_pct"] == pytest.approx(want, rel=1e-9, abs=1e-9)
            small = abs(want) < 1 or abs(new[key] - base[key]) < 2
            expected = "unchanged" if small else ("worsened" if want > 0 else "improved")
            assert r["change"] == expected, (key, r)
        checked += 1
    assert checked > 300  # store methods and API handlers, avg and p99
    for key in set(base) ^ set(new):
        assert rows[key]["change"] == ("only_base" if key in base else "only_new")
    assert doc["supported_users"]["base"]["mean"] == 17048
    assert doc["supported_users"]["new"]["mean"] == 29634
    assert doc["supported_users"]["verdict"] == "improved"


def test_compare_markdown_tables_follow_ltctl(cli: Cli, mpr: Path) -> None:
    v2 = mpr / "ceiling-tests" / "v2"
    res = cli("compare", str(v2 / "ctXL220" / "ctXL220-1"), str(v2 / "ctXL222" / "ctXL222-1"))
    assert res.returncode == 0, res.stderr
    md = res.stdout
    titles = re.findall(r"^### (.+):$", md, re.MULTILINE)
    # the same tables, in the same order, as Mattermost's published `ltctl report compare` output
    published = (
        mpr
        / "performance-comparisons"
        / "esr-11.7"
        / "results"
        / "report_0_postgresql_bounded_6500.md"
    ).read_text(encoding="utf-8")
    want = [t for t in re.findall(r"^### (.+):$", published, re.MULTILINE) if t.endswith("d)")]
    assert len(want) == 8 and titles == want
    assert "| | | Base | Actual | Delta | Delta % |" in published
    assert md.count("| Base | Actual | Delta | Delta % |") == 8
    # each table sorted by delta % (descending when worsened, ascending when improved)
    for block in re.split(r"^### ", md, flags=re.MULTILINE)[1:]:
        title = block.splitlines()[0]
        cells = [
            ln.rsplit("|", 2)[-2].strip() for ln in block.splitlines()[3:] if ln.startswith("|")
        ]
        pcts = [float(c) for c in cells if re.fullmatch(r"-?\d+\.\d\d", c)]
        if "worsened" in title:
            assert pcts == sorted(pcts, reverse=True) and all(p >= 1 for p in pcts)
        elif "improved" in title:
            assert pcts == sorted(pcts) and all(p <= -1 for p in pcts)


def test_compare_repeats_uses_welch(cli: Cli, mpr: Path) -> None:
    v2 = mpr / "ceiling-tests" / "v2"
    res = cli("compare", str(v2 / "ctXL220"), str(v2 / "ctXL222"), "-f", "json")
    assert res.returncode == 0, res.stderr
    u = json.loads(res.stdout)["supported_users"]
    base, new = [17048, 17410, 17159], [16951, 17371, 17064]
    assert u["base"]["values"] == base and u["new"]["values"] == new
    assert u["p_value"] == pytest.approx(stats.ttest_ind(new, base, equal_var=False).pvalue)
    assert "Welch" in u["method"] and u["verdict"] == "noise"


def test_import_ltng_plain_and_gz_agree(cli: Cli, mpr: Path, tmp_path: Path) -> None:
    src = mpr / "ceiling-tests" / "v2" / "ctL110" / "ctL110-2"
    plain_dir = tmp_path / "ctL110-2"
    plain_dir.mkdir()
    (plain_dir / "report.json").write_bytes(gzip.decompress((src / "ctL110-2.out.gz").read_bytes()))
    shutil.copy(src / "results.txt", plain_dir / "results.txt")
    gz = cli("import", "ltng", str(src / "ctL110-2.out.gz"), "-f", "json")
    plain = cli(
        "import",
        "ltng",
        str(plain_dir / "report.json"),
        "--architecture",
        "L.110",
        "--label",
        "v9.5.7",
        "-f",
        "json",
    )
    assert gz.returncode == 0 and plain.returncode == 0, gz.stderr + plain.stderr
    (a,), (b,) = json.loads(gz.stdout), json.loads(plain.stdout)
    assert a["architecture"] == "ctL110" and a["label"] == "9.5.7" and a["supported_users"] == 245
    assert b["architecture"] == "L.110" and b["label"] == "v9.5.7" and b["supported_users"] == 245
    assert a["timings"] == b["timings"]
    assert sum(t["kind"] == "api" for t in a["timings"]) == 41  # handlers in ctL110-2's report
    login = next(t for t in a["timings"] if t["name"] == "login")
    raw = json.loads(gzip.decompress((src / "ctL110-2.out.gz").read_bytes()))
    assert login["avg_ms"] == pytest.approx(float(raw["AvgAPITimes"]["login"]) * 1000)


def test_import_writes_every_format(cli: Cli, mpr: Path, tmp_path: Path) -> None:
    """--out alone writes every format the command has (import has no JUnit; ceiling has)."""
    res = cli(
        "import", "ltng", str(mpr / "ceiling-tests" / "v2" / "ctL220"), "--out", str(tmp_path)
    )
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ltng-import.html",
        "ltng-import.json",
        "ltng-import.md",
    ]
    ceiling = tmp_path / "ceiling"
    res = cli("ceiling", str(mpr / "ceiling-tests" / "v2" / "ctL220"), "--out", str(ceiling))
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in ceiling.iterdir()) == [
        "ceiling.html",
        "ceiling.json",
        "ceiling.junit.xml",
        "ceiling.md",
    ]
    junit = cli("import", "ltng", str(mpr / "ceiling-tests" / "v2" / "ctL220"), "-f", "junit")
    assert junit.returncode == 2 and "not available for this command" in junit.stderr
    md = (tmp_path / "ltng-import.md").read_text()
    assert "| ctL220-1 | ctL220 | 9.5.7 | 299 |" in md


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ceiling", "no/such/dir"], "no/such/dir: no such file or directory"),
        (["compare", "{bad}", "{bad}"], "invalid JSON"),
        (["import", "ltng", "{notltng}"], "not an ltng report"),
        (["ceiling", "{empty}"], "no mmload run records or ltng reports found"),
        (["ceiling", "{v2}", "--format", "pdf"], "--format: unknown format 'pdf'"),
        (["ceiling", "{v2}", "--format", "md,json"], "several formats need --out"),
        (["report", "{empty}"], "not a run record (no run.json)"),
        (["compare", "{v2}", "{v2}", "--noise-pct", "-3"], "--noise-pct: Input should be greater"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    cli: Cli, args: list[str], needle: str, mpr: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    notltng = tmp_path / "config.json"
    notltng.write_text('{"ServerURL": "x"}')
    empty = tmp_path / "empty"
    empty.mkdir()
    paths = {"bad": bad, "notltng": notltng, "empty": empty, "v2": mpr / "ceiling-tests" / "v2"}
    res = cli(*[a.format(**paths) for a in args])
    assert res.returncode == 2, res
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert "Traceback" not in res.stderr
