"""`mmload architectures --docs`: pages per tier and per measured architecture, checked against
the shipped catalog and Mattermost's published Ceiling Tests v2, both read here independently."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

from tests.campaign.published import (
    REPO,
    deployer_of,
    published,
    readme_averages,
    same_as_tier,
)
from tests.campaign.records import tier_price, write_run
from tests.conftest import run_cli

CATALOG = yaml.safe_load((REPO / "mmload" / "catalog" / "architectures.yaml").read_text())


@pytest.fixture
def v2(shared: Path) -> Path:
    return shared / "datasets" / "mattermost-performance-reports" / "ceiling-tests" / "v2"


def table(page: str, heading: str) -> list[list[str]]:
    """The rows (cells) of the first table under ``## heading``, without the header rows."""
    section = page.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[c.strip() for c in r.strip("|").split("|")] for r in rows[2:]]


def number(text: str) -> float:
    return float(text.replace(",", ""))


def docs(out: Path, *args: str) -> None:
    res = run_cli("architectures", "--docs", str(out), *args)
    assert res.returncode == 0, res.stderr


def test_pages_carry_the_published_averages(v2: Path, tmp_path: Path) -> None:
    out = tmp_path / "docs"
    docs(out, "--data", str(v2))
    archs, readme = published(v2), readme_averages(v2)
    assert set(readme) == set(archs) and len(archs) == 16
    tiers = {t["users"]: t for t in CATALOG["tiers"]}
    expected_files = {"index.md", *(f"tier-{u}.md" for u in tiers)}
    for name, arch in archs.items():
        matches = [u for u, t in tiers.items() if same_as_tier(deployer_of(v2, name), t)]
        assert len(matches) <= 1
        page_file = f"tier-{matches[0]}.md" if matches else f"measured-{name}.md"
        expected_files.add(page_file)
        page = (out / page_file).read_text()
        rows = [r for r in table(page, "Validated supported users") if r[-1] == name]
        assert len(rows) == 1, (name, page_file)
        version, mean, runs = rows[0][0], number(rows[0][1]), int(rows[0][2])
        assert version == "9.5.7" and runs == len(arch.runs) == 3
        assert mean == pytest.approx(arch.mean, abs=0.005), name
        # the README's whole number is the mean truncated or rounded (it does both)
        assert readme[name] in (math.floor(mean), round(mean)), (name, mean, readme[name])
        assert (number(rows[0][3]), number(rows[0][4])) == (
            min(arch.runs.values()),
            max(arch.runs.values()),
        )
        # each run is linked, and the link leads to its report
        for run in arch.runs:
            m = re.search(rf"\[{run}\]\(<([^>]+)>\)", page)
            assert m, (name, run)
            assert (out / m.group(1)).resolve() == (v2 / name / run / f"{run}.out.gz").resolve()
        # the test method: the coordinator's alerting thresholds and the repeats
        coord = json.loads(
            (v2 / name / sorted(arch.runs)[0] / "config" / "coordinator.json").read_text()
        )
        for q in coord["MonitorConfig"]["Queries"]:
            assert f"{q['Description']} < {q['Threshold']}" in page, (name, q["Description"])
        assert "- Repeats: 3" in page
    assert {p.name for p in out.iterdir()} == expected_files
    # two published architectures are exactly catalog tiers (the catalog says so)
    assert "tier-2000.md" in expected_files and "measured-ctL222.md" not in expected_files


def test_tier_pages_show_the_catalog_sizes_and_cost(v2: Path, tmp_path: Path) -> None:
    out = tmp_path / "docs"
    docs(out)  # the catalog alone: nothing validated
    index = (out / "index.md").read_text()
    for t in CATALOG["tiers"]:
        page = (out / f"tier-{t['users']}.md").read_text()
        assert f"# Up to {t['users']:,} users" in page
        assert t["source"] in page
        assert "**Validated**: not yet" in page
        parts = {r[0]: r for r in table(page, "Components")}
        assert parts["app"][1:3] == [str(t["app"]["count"]), t["app"]["instance_type"]]
        db = t["database"]
        assert parts["database"][1:3] == [str(1 + db["readers"]), db["instance_class"]]
        if t["search"]["count"]:
            assert parts["search"][1:3] == [str(t["search"]["count"]), t["search"]["instance_type"]]
        else:
            assert "search" not in parts
        assert ("cache" in parts) == bool(t["cache"]["count"])
        assert parts["**total**"][-1] == f"**${tier_price(t['users']):,.2f}**"
        assert f"[{t['users']:,}](tier-{t['users']}.md)" in index
    assert "Other measured architectures" not in index


def test_campaign_records_validate_a_tier_per_version(v2: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for i, u in enumerate((16100, 16300)):
        write_run(runs, f"t15k-10.11-{i}", "tier-15000", "10.11.17", u)
    for i, u in enumerate((15000, 15400, 15200)):
        write_run(runs, f"t15k-11.7-{i}", "tier-15000", "11.7.1", u)
    out = tmp_path / "docs"
    docs(out, "--results", str(runs), "--data", str(v2))
    page = (out / "tier-15000.md").read_text()
    rows = table(page, "Validated supported users")
    assert [(r[0], number(r[1]), r[2], r[-1]) for r in rows] == [
        ("9.5.7", pytest.approx(published(v2)["ctXL222"].mean, abs=0.005), "3", "ctXL222"),
        ("10.11.17", 16200.0, "2", "tier-15000"),
        ("11.7.1", 15200.0, "3", "tier-15000"),
    ]
    assert "**Validated**: 15,200 supported users on 11.7.1 (mean of 3 runs)" in page
    assert "mmload scenario ceiling (ceiling)" in page and "login_p99_ms < 2,000" in page
    m = re.search(r"\[t15k-11.7-0\]\(<([^>]+)>\)", page)
    assert m and (out / m.group(1)).resolve() == (runs / "t15k-11.7-0").resolve()
    # ctXL220 has the tier's app and database but no search: similar, not validating
    similar = {r[0]: r for r in table(page, "Similar measured architectures")}
    assert set(similar) == {"ctXL220"} and similar["ctXL220"][1] == "search: none"


def test_docs_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for args, flag in [
        (["--data", str(tmp_path)], "--docs"),
        (["--docs", str(a_file)], "--docs"),
        (["--docs", str(tmp_path / "d"), "--json"], "--json"),
        (["--docs", str(tmp_path / "d"), "--results", str(tmp_path / "none")], "--results"),
    ]:
        res = run_cli("architectures", *args)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and flag in lines[0], (args, res.stderr)
