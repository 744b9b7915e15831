"""`mmload advise` over Mattermost's published ceiling data and over small synthetic records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mmload.campaign.advise import advise
from mmload.campaign.evidence import read_measurements
from mmload.config.campaign import AdviseOptions
from tests.campaign.published import cheapest_covering, published
from tests.campaign.records import tier_price, write_run
from tests.conftest import run_cli


@pytest.fixture
def v2(shared: Path) -> Path:
    return shared / "datasets" / "mattermost-performance-reports" / "ceiling-tests" / "v2"


def cases(archs: dict) -> list[tuple[int, float]]:
    """Round requests, and each architecture's edges: the largest need its mean covers and the
    smallest it does not, without headroom and with 30 %."""
    out = [(100, 0), (100, 30), (2000, 10), (15000, 30), (30000, 0), (70000, 30), (100000, 30)]
    for a in archs.values():
        out += [(math.floor(a.mean), 0), (math.floor(a.mean) + 1, 0)]
        out += [(math.floor(a.mean / 1.3), 30), (math.floor(a.mean / 1.3) + 1, 30)]
    return out


def test_advise_picks_the_cheapest_covering_published_architecture(v2: Path) -> None:
    archs = published(v2)
    assert len(archs) == 16
    measurements, skipped = read_measurements([v2])
    assert skipped == []
    wrong = []
    expected_picks = set()
    for users, headroom in cases(archs):
        need = users * (1 + headroom / 100)
        want = cheapest_covering(archs, need)
        expected_picks.add(want.name if want else None)
        got = advise(measurements, AdviseOptions(users=users, headroom=headroom), []).pick
        if (got.architecture if got else None) != (want.name if want else None):
            wrong.append((users, headroom, got and got.architecture, want and want.name))
            continue
        if want and got:
            assert got.cost and got.cost.usd_per_hour == pytest.approx(want.usd_per_hour)
            assert {r.name: r.supported_users for r in got.runs} == {
                k: float(v) for k, v in want.runs.items()
            }
            assert (got.min, got.max) == (min(want.runs.values()), max(want.runs.values()))
    assert wrong == [], wrong
    # the table exercises many answers, including "nothing covers it"
    assert None in expected_picks and len(expected_picks) >= 8, expected_picks


def test_advise_cli_on_published_data(v2: Path) -> None:
    archs = published(v2)
    res = run_cli("advise", "--users", "15000", "--headroom", "30%", "--data", str(v2), "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    want = cheapest_covering(archs, 15000 * 1.3)
    assert want is not None
    assert doc["required_users"] == pytest.approx(19500)
    assert doc["pick"]["architecture"] == want.name
    assert doc["pick"]["mean"] == pytest.approx(want.mean)
    assert doc["pick"]["usd_per_hour"] == pytest.approx(want.usd_per_hour)
    assert len(doc["candidates"]) == 16
    costs = [c["usd_per_hour"] for c in doc["candidates"]]
    assert costs == sorted(costs)
    md = run_cli("advise", "--users", "15000", "--data", str(v2))
    assert md.returncode == 0, md.stderr
    assert f"**{want.name}** (version 9.5.7)" in md.stdout
    for run in want.runs:
        assert run in md.stdout  # the evidence names each run


def test_advise_says_when_nothing_covers(v2: Path) -> None:
    res = run_cli("advise", "--users", "100000", "--data", str(v2))
    assert res.returncode == 1
    assert "No measured architecture covers 130,000 supported users" in res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "no measured architecture covers 130,000" in lines[0]
    assert "ct4XL662" in lines[0]
    bad = run_cli("advise", "--users", "1000", "--version", "10.11.17", "--data", str(v2))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "mmload: error: command line: --version: no measurement of version '10.11.17' "
        "(measured: 9.5.7)"
    ]


# ---------------------------------------------------------------- synthetic records


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    root = tmp_path / "campaign"
    for i, u in enumerate((2500, 2600, 2400)):
        write_run(root, f"t2k-10.11-{i}", "tier-2000", "10.11.17", u)
    for i, u in enumerate((2100, 2050)):
        write_run(root, f"t2k-11.7-{i}", "tier-2000", "11.7.1", u)
    for i, u in enumerate((16000, 17000)):
        write_run(root, f"t15k-10.11-{i}", "tier-15000", "10.11.17", u)
    for i, u in enumerate((15500, 15800)):
        write_run(root, f"t15k-11.7-{i}", "15000", "11.7.1", u)  # a bare tier number names it too
    write_run(root, "custom-11.7-0", "custom-box", "11.7.1", 50000)
    write_run(root, "t200-10.11-0", "tier-200", "10.11.17", 300)
    write_run(root, "t200-10.11-1", "tier-200", "10.11.17", 9999, outcome="failed")
    return root


def advise_json(campaign: Path, *args: str) -> tuple[int, dict]:
    res = run_cli("advise", "--results", str(campaign), "--json", *args)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def test_advise_over_records_by_version_and_cost(campaign: Path) -> None:
    # latest version of each architecture: tier-2000 at 11.7.1 has a mean of 2,075
    rc, doc = advise_json(campaign, "--users", "1500")  # 1,950 needed
    assert rc == 0
    assert (doc["pick"]["architecture"], doc["pick"]["version"]) == ("tier-2000", "11.7.1")
    assert doc["pick"]["mean"] == pytest.approx(2075)
    assert doc["pick"]["usd_per_hour"] == pytest.approx(tier_price(2000))
    assert sorted(r["name"] for r in doc["pick"]["runs"]) == ["t2k-11.7-0", "t2k-11.7-1"]
    # 2,210 needed: 11.7.1's tier-2000 no longer covers, 10.11.17's does
    rc, doc = advise_json(campaign, "--users", "1700")
    assert rc == 0
    assert (doc["pick"]["architecture"], doc["pick"]["version"]) == ("tier-15000", "11.7.1")
    assert doc["pick"]["mean"] == pytest.approx(15650)  # `15000` and `tier-15000`: one tier
    assert doc["pick"]["usd_per_hour"] == pytest.approx(tier_price(15000))
    rc, doc = advise_json(campaign, "--users", "1700", "--version", "10.11.17")
    assert rc == 0 and doc["pick"]["architecture"] == "tier-2000"
    assert doc["pick"]["mean"] == pytest.approx(2500)
    assert doc["pick"]["stdev"] == pytest.approx(100)
    # the failed run is not counted, and says so
    t200 = next(c for c in doc["candidates"] if c["architecture"] == "tier-200")
    assert t200["mean"] == 300 and len(t200["runs"]) == 1
    assert any("t200-10.11-1" in s and "failed" in s for s in doc["skipped"])


def test_advise_never_picks_an_unpriced_architecture(campaign: Path) -> None:
    rc, doc = advise_json(campaign, "--users", "30000")
    assert rc == 1 and doc["pick"] is None and doc["covered"] is False
    custom = doc["unranked"]
    assert [c["architecture"] for c in custom] == ["custom-box"]
    assert custom[0]["mean"] == 50000 and "not a catalog tier" in custom[0]["problem"]
    res = run_cli("advise", "--results", str(campaign), "--users", "30000")
    assert res.returncode == 1
    assert "custom-box (version 11.7.1, mean 50,000): sizes unknown" in res.stdout


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--users", "0"], "--users"),
        (["--users", "many"], "--users"),
        (["--users", "10", "--headroom", "lots"], "--headroom"),
        (["--users", "10", "--headroom", "-5%"], "--headroom"),
        (["--users", "10", "--headroom", "5000"], "--headroom"),
        (["--users", "10", "--version", ""], "--version"),
    ],
)
def test_advise_bad_flags_exit_2_naming_the_flag(
    campaign: Path, args: list[str], flag: str
) -> None:
    res = run_cli("advise", "--results", str(campaign), *args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0] and "Traceback" not in res.stderr, res.stderr


def test_advise_needs_results(tmp_path: Path) -> None:
    res = run_cli("advise", "--users", "10")
    assert res.returncode == 2 and "--results" in res.stderr
    res = run_cli("advise", "--users", "10", "--data", str(tmp_path / "nowhere"))
    assert res.returncode == 2 and "--data" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
