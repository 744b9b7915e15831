"""The 11.x user's 60 s polls, on virtual time with a recording HTTP client: the status of the
user and the authors on screen, and the client performance report, a period after the load."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest

from mmload.load.user import polls, webapp11
from mmload.load.user.session import SessionStore


class RecordingHttp:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str, str, Any]] = []
        self.now = 0.0

    def request(self, method: str, path: str, name: str, json: Any = None) -> Any:
        self.calls.append((self.now, method, name, json))
        return SimpleNamespace(status_code=200)


class Polling(polls.Polls, webapp11.Webapp11Flow):
    def __init__(self) -> None:
        self.http = RecordingHttp()  # type: ignore[assignment]
        self.session = SessionStore(user_id="me0000000000000000000000aa", logged_in=True)
        self.session.known_users = ["a" * 26, "b" * 26]
        self.rng = random.Random(1)


class VirtualTicker:
    """The Ticker's contract on virtual time: ``job`` at every multiple of ``interval_s``."""

    def __init__(self, interval_s: float, job: Any) -> None:
        self.interval_s, self.job = interval_s, job

    def run_until(self, user: Polling, end_s: float) -> None:
        while user.http.now + self.interval_s <= end_s:
            user.http.now += self.interval_s
            self.job()


def test_polls_every_60s_from_the_load_on(monkeypatch: pytest.MonkeyPatch) -> None:
    user = Polling()
    monkeypatch.setattr(polls, "Ticker", VirtualTicker)
    ticker = user.start_polls()
    assert isinstance(ticker, VirtualTicker) and ticker.interval_s == 60.0
    ticker.run_until(user, 200)
    user.session.logged_in = False  # logged out: no more polls
    ticker.run_until(user, 400)
    at = sorted({t for t, *_ in user.http.calls})
    assert at == [60.0, 120.0, 180.0]
    names = sorted(name for _, _, name, _ in user.http.calls)
    assert names == ["/client_perf"] * 3 + ["/users/status/ids"] * 3
    statuses = [body for _, _, name, body in user.http.calls if name == "/users/status/ids"]
    assert statuses[0] == [user.session.user_id, "a" * 26, "b" * 26]
    report = next(body for _, _, name, body in user.http.calls if name == "/client_perf")
    assert report["version"] == "0.1.0" and report["end"] - report["start"] == 60_000
