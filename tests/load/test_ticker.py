"""The Ticker behind the WebSocket ping: a job every period, each in a greenlet that lives only
while it runs, periods skipped while the last one runs, nothing after stop. On gevent's real
loop with short periods; the asserts wait for counts (generous timeouts), never on speed."""

from __future__ import annotations

import time

import gevent
import gevent.event

from mmload.load.ticker import Ticker, stop_ticker

PERIOD_S = 0.02


def wait_for(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        gevent.sleep(0.005)


def test_runs_the_job_each_period_in_a_short_lived_greenlet_until_stopped() -> None:
    runs: list[gevent.Greenlet] = []
    ticker = Ticker(PERIOD_S, lambda: runs.append(gevent.getcurrent()))
    wait_for(lambda: len(runs) >= 3)
    assert len(set(map(id, runs))) == len(runs)  # a new greenlet each time
    wait_for(lambda: all(g.dead for g in runs))  # none of them stays between periods
    stop_ticker(ticker)
    assert not ticker.active
    done = len(runs)
    gevent.sleep(PERIOD_S * 10)
    assert len(runs) == done
    stop_ticker(None)  # no ticker: nothing to stop


def test_a_period_is_skipped_while_the_last_job_runs_and_stop_kills_it() -> None:
    release = gevent.event.Event()
    started: list[float] = []
    finished: list[float] = []

    def job() -> None:
        started.append(time.monotonic())
        release.wait()
        finished.append(time.monotonic())

    ticker = Ticker(PERIOD_S, job)
    wait_for(lambda: len(started) == 1)
    gevent.sleep(PERIOD_S * 10)  # ten periods while the first job waits
    assert len(started) == 1
    release.set()
    wait_for(lambda: len(started) >= 2)  # the next period runs again
    release.clear()
    wait_for(lambda: len(started) > len(finished))  # a job waiting now
    ticker.stop()
    release.set()
    gevent.sleep(PERIOD_S * 5)
    assert len(finished) == len(started) - 1  # the waiting job was killed, not finished


def test_stop_from_inside_the_job_does_not_kill_the_job() -> None:
    finished: list[bool] = []
    holder: dict[str, Ticker] = {}

    def job() -> None:
        holder["t"].stop()
        finished.append(True)

    holder["t"] = Ticker(PERIOD_S, job)
    wait_for(lambda: finished == [True])
    gevent.sleep(PERIOD_S * 5)
    assert finished == [True]
