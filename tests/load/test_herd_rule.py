"""The reconnect herd follows the web client's rule, computed here independently of schedule.py.

The reference is a transcription of ``onclose`` in Mattermost's ``webapp/platform/client/src/
websocket.ts`` (``WebSocketClient``, defaults ``maxWebSocketFails`` 7, ``minWebSocketRetryTime``
3000 ms, ``maxWebSocketRetryTime`` 300000 ms, ``reconnectJitterRange`` 2000 ms): every close
increments ``connectFailCount`` *before* the delay is computed, so the drop itself counts; an
``onopen`` resets it. The client is simulated as the browser runs it — a timer per retry,
every attempt during the outage closing at once — in milliseconds, as the JavaScript does.
"""

from __future__ import annotations

import random

import gevent
import pytest

from mmload.config.scenario import WebSocketSpec
from mmload.load import ws as ws_module
from mmload.load.schedule import Backoff, herd_offsets, jitter_sum

MAX_FAILS, MIN_RETRY_MS, MAX_RETRY_MS, JITTER_MS = 7, 3000, 300000, 2000
SAMPLES = 20_000
QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


class WebClient:
    """The reconnect part of ``WebSocketClient``: ``onclose`` schedules ``initialize``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.connect_fail_count = 0

    def onclose(self) -> float:
        """Milliseconds until the next ``initialize`` (``retryTime`` with jitter)."""
        self.connect_fail_count += 1
        retry = MIN_RETRY_MS
        if self.connect_fail_count > MAX_FAILS:
            retry = retry * self.connect_fail_count * self.connect_fail_count
            if retry > MAX_RETRY_MS:
                retry = MAX_RETRY_MS
        return retry + self.rng.random() * JITTER_MS

    def reconnect_after(self, outage_ms: float) -> float:
        """The drop closes the socket at 0; attempts before the outage's end close again."""
        now = self.onclose()
        while now < outage_ms:
            now += self.onclose()
        self.connect_fail_count = 0  # onopen
        return now


def reference(outage_s: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return sorted(WebClient(rng).reconnect_after(outage_s * 1000) / 1000 for _ in range(SAMPLES))


def quantile(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(q * len(xs)))]


@pytest.mark.parametrize("outage_s", [30.0, 60.0])
def test_herd_distribution_matches_the_web_clients_rule(outage_s: float) -> None:
    expected = reference(outage_s, seed=11)
    got = sorted(herd_offsets(SAMPLES, outage_s, Backoff.from_spec(WebSocketSpec()), seed=5))
    for q in QUANTILES:
        assert quantile(got, q) == pytest.approx(quantile(expected, q), abs=1.0), q
    early = sum(1 for x in got if x < 100) / SAMPLES
    assert early == pytest.approx(sum(1 for x in expected if x < 100) / SAMPLES, abs=0.015)


def test_a_30s_outage_brings_most_clients_back_after_the_192s_step() -> None:
    """Seven 3-5 s retries rarely cover 30 s, so most clients wait out the 8th close's
    3 s x 8^2: the median is ~221 s, not ~32 s (which counting from 0 failures gave)."""
    expected = reference(30.0, seed=3)
    assert 215 < quantile(expected, 0.5) < 228
    got = sorted(herd_offsets(SAMPLES, 30.0, Backoff.from_spec(WebSocketSpec()), seed=3))
    assert 215 < quantile(got, 0.5) < 228
    assert 0.03 < sum(1 for x in got if x < 40) / SAMPLES < 0.25


def test_the_sockets_own_reconnect_loop_counts_the_drop(monkeypatch: pytest.MonkeyPatch) -> None:
    """MMWebSocket's retries after a drop draw the same delays as the web client: seven at
    3-5 s, then 192 s, 243 s, 300 s (no wall-clock wait: gevent.sleep is recorded)."""
    slept: list[float] = []
    monkeypatch.setattr(gevent, "sleep", slept.append)  # restored after the test
    sock = ws_module.MMWebSocket(
        "ws://127.0.0.1:9/api/v4/websocket", "t", lambda **kw: None, WebSocketSpec(), timeout_s=1
    )
    attempts = iter([False] * 9 + [True])
    monkeypatch.setattr(sock, "connect", lambda context=None: next(attempts))
    sock._reconnect_loop()
    assert len(slept) == 10
    assert all(3.0 <= d < 5.0 for d in slept[:7])
    for delay, base in zip(slept[7:], (192, 243, 300), strict=True):
        assert base <= delay < base + 2
    assert sock.failures == 9


def test_fast_retries_over_a_long_outage_are_drawn_in_steps_not_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """36,000 retries of 0.1 s in an hour: the same answer without jitter, the same spread with
    it (their jitter drawn as one sum), in a few steps per client rather than a loop of 36,000
    (counted in delay computations, not timed)."""
    fast = Backoff(min_s=0.1, max_s=0.1, jitter_s=0.0, grow_after=0)
    computed = []
    base_delay = Backoff.base_delay
    monkeypatch.setattr(
        Backoff, "base_delay", lambda self, n: computed.append(n) or base_delay(self, n)
    )
    assert herd_offsets(500, 3600.0, fast) == [pytest.approx(3600.0)] * 500
    assert 0 < len(computed) <= 20 * 500, len(computed)  # one by one: 36,000 per client
    monkeypatch.undo()

    def one_by_one(b: Backoff, outage_s: float, rng: random.Random) -> float:
        t, closes = 0.0, 1
        while True:
            t += b.delay(closes, rng)
            if t >= outage_s:
                return t
            closes += 1

    jittered = Backoff(min_s=0.1, max_s=0.1, jitter_s=0.2, grow_after=0)
    rng = random.Random(1)
    exact = sorted(one_by_one(jittered, 300.0, rng) for _ in range(400))
    got = sorted(herd_offsets(400, 300.0, jittered, seed=2))
    for q in (0.05, 0.5, 0.95):  # every reconnect lands within one retry after the outage
        assert quantile(got, q) == pytest.approx(quantile(exact, q), abs=0.05), q
    assert min(got) >= 300.0 and max(got) <= 300.0 + 0.1 + 0.2
    rng.seed(3)
    sums = [jitter_sum(1000, rng) for _ in range(2000)]
    assert sum(sums) / len(sums) == pytest.approx(500, abs=1) and min(sums) >= 0
