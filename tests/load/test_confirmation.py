"""Before any non-loopback storm the operator confirms what is about to happen: the target, the
version it reports and the load (users, peak login rate) — skipped only with --yes, refused off a
terminal. The target here is a real `mmload sim` on 127.0.0.1; only its "not loopback" verdict
is emulated (this machine has no other address to send load to)."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from mmload.commands import load as load_cmd
from mmload.config.scenario import RunOptions
from mmload.errors import UserError
from mmload.net import free_port
from mmload.sim.launcher import running_sim


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with running_sim(users=10) as sim:
        yield sim.url


@pytest.fixture
def remote_looking(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The target counts as non-loopback, stdin as a terminal; prompts are captured (answer no)."""
    asked: list[str] = []
    monkeypatch.setattr(load_cmd, "is_loopback", lambda _t: False)
    monkeypatch.setattr(load_cmd.sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(load_cmd.click, "confirm", lambda text, **_: asked.append(text) and False)
    return asked


def _storm(target: str):
    opts = RunOptions(target=target, scale=0.1)
    return load_cmd.prepared_scenario("sev0-login-storm", opts)[0]


def test_the_prompt_names_target_version_users_and_peak_rate(sim_url, remote_looking) -> None:
    with pytest.raises(click.exceptions.Abort):
        load_cmd.confirm_target(sim_url, False, _storm(sim_url))
    (text,) = remote_looking
    assert text.startswith("Send sev0-login-storm (1,500 users, peak ")
    assert "logins/s over 90 s" in text and f"to {sim_url} (Mattermost " in text
    assert "unknown" not in text  # the sim reports its version as the server does


def test_an_unreachable_target_is_said_in_the_prompt(remote_looking) -> None:
    target = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(click.exceptions.Abort):
        load_cmd.confirm_target(target, False, _storm(target))
    assert "not answering" in remote_looking[0]


def test_yes_skips_and_no_terminal_refuses(sim_url, remote_looking, monkeypatch) -> None:
    load_cmd.confirm_target(sim_url, True, _storm(sim_url))
    assert remote_looking == []
    monkeypatch.setattr(load_cmd.sys.stdin, "isatty", lambda: False)
    with pytest.raises(UserError, match="pass --yes"):
        load_cmd.confirm_target(sim_url, False, _storm(sim_url))


def test_a_remote_target_is_not_probed_from_the_laptop(remote_looking, monkeypatch) -> None:
    def no_probe(*_a, **_k):
        raise AssertionError("probed a private address from the operator's machine")

    monkeypatch.setattr("mmload.load.preflight.probe_target", no_probe)
    with pytest.raises(click.exceptions.Abort):
        load_cmd.confirm_target("https://10.0.1.5", False, _storm("https://10.0.1.5"), probe=False)
    assert "as the deployment's agents reach it" in remote_looking[0]
