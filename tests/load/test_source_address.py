"""`mmload run --source-address` (issue 15, item 3): the users' connections are spread over the
given local addresses by user index, round robin, HTTP and WebSocket alike. Judged from the
simulator's side: the keys of its own limiters (the peer address of every request it got,
``/limiters`` beside its metrics), never from what the client says it did."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mmload.load import pin
from mmload.load.tls import stdlib_context
from mmload.sim.launcher import SimProcess, running_sim
from tests.load.conftest import run_dir_from, run_mmload, write_scenario

pytestmark = pytest.mark.slow

SOURCES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """No server costs, but both limiters on (wide enough never to refuse): their keys are the
    simulator's record of which address sent what."""
    profile = tmp_path_factory.mktemp("profile") / "limited.yaml"
    profile.write_text(
        "extends: fast\n"
        "login_rate_limit: {per_sec: 1000, burst: 1000}\n"
        "global_rate_limit: {per_sec: 10000, max_burst: 10000}\n"
    )
    with running_sim(users=50, profile_file=str(profile)) as s:
        yield s


def limiters(sim: SimProcess) -> dict:
    assert sim.metrics_url is not None
    url = sim.metrics_url.removesuffix("/metrics") + "/limiters"
    return requests.get(url, timeout=10).json()


@pytest.mark.parametrize("workers", [0, 1])
def test_a_storm_spreads_its_logins_over_the_source_addresses(
    limited: SimProcess, tmp_path: Path, workers: int
) -> None:
    """12 users, 3 addresses, in one process or in a local worker (the plan carries the
    addresses): the simulator saw exactly 4 more logins from each, and every other request of the
    users from these addresses too; from 127.0.0.1 only the master's probes."""
    before = limiters(limited)
    scenario = write_scenario(
        tmp_path / "spread.yaml",
        name="spread", kind="storm", users=12, arrival_s=2, hold_s=2, actions=False,
    )  # fmt: skip
    flags = [a for s in SOURCES for a in ("--source-address", s)]
    res = run_mmload(
        "run", str(scenario), "--target", limited.url, "--out", str(tmp_path), *flags,
        "--workers", str(workers), "--no-fail-on-slo", timeout=180,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert (run_dir_from(res.stdout) / "run.json").is_file()
    after = limiters(limited)
    logins = delta(after["login"]["allowed"], before["login"]["allowed"])
    assert logins == {s: 4 for s in SOURCES}, logins
    assert after["login"]["refused"] == {} and after["global"]["refused"] == {}
    seen = delta(after["global"]["allowed"], before["global"]["allowed"])
    assert set(seen) == {*SOURCES, "127.0.0.1"}, seen
    per_source = [seen[s] for s in SOURCES]
    assert min(per_source) > 4 * 5, per_source  # the initial loads and sockets, not only logins
    assert max(per_source) - min(per_source) <= max(per_source) // 4, per_source
    assert seen["127.0.0.1"] <= 5, seen  # the probes before the run


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """What each key sent between two readings (keys that sent nothing left out)."""
    return {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}


def test_the_websocket_connects_from_its_source_address(limited: SimProcess) -> None:
    """The WebSocket's upgrade (through the global limiter) comes from the address asked for."""
    pin.PINNED.clear()
    before = limiters(limited)["global"]["allowed"].get("127.0.0.5", 0)
    ws = pin.open_websocket(limited.ws_url, 5.0, stdlib_context, "127.0.0.5")
    try:
        assert ws.sock.getsockname()[0] == "127.0.0.5"
    finally:
        ws.close()
    assert limiters(limited)["global"]["allowed"].get("127.0.0.5", 0) == before + 1


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("10.255.255.254", "10.255.255.254 is not a local address of this machine"),
        ("not-an-ip", "'not-an-ip' is not an IP address"),
    ],
)
def test_an_address_this_machine_cannot_send_from_is_bad_input(
    limited: SimProcess, value: str, why: str
) -> None:
    res = run_mmload(
        "run", "sev0-login-storm", "--target", limited.url, "--users", "2",
        "--source-address", "127.0.0.2", "--source-address", value, timeout=60,
    )  # fmt: skip
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    prefix = "mmload: error: command line: --source-address: "
    assert len(lines) == 1 and lines[0].startswith(prefix + why), lines
    assert "run record" not in res.stdout


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--remote-workers", "1"], "addresses of this machine: not with --remote-workers"),
        (["--target", "http://[::1]:9"], "127.0.0.2 cannot reach the target's address ::1"),
    ],
)
def test_sources_that_cannot_serve_the_run_are_bad_input(
    limited: SimProcess, args: list[str], why: str
) -> None:
    """Remote workers send from their own machines; an IPv4 source cannot reach an IPv6
    target: both refused before anything is sent."""
    res = run_mmload(
        "run", "sev0-login-storm", "--target", limited.url, "--users", "2",
        "--source-address", "127.0.0.2", *args, timeout=60,
    )  # fmt: skip
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    prefix = "mmload: error: command line: --source-address: "
    assert len(lines) == 1 and lines[0].startswith(prefix + why), lines
