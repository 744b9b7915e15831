"""The 11.x web app's polls every 60 s while logged in: the status of the users on screen and
the client performance report. Written as a mixin of :class:`~mmload.load.user.MattermostUser`.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable

from mmload.load.ticker import Ticker
from mmload.load.user.client import ApiClient
from mmload.load.user.session import SessionStore
from mmload.load.user.webapp11 import parallel

POLL_INTERVAL_S = 60.0  # the status poll and the client performance report
STATUS_POLL_POSTS = 60  # posts the poll looks at (ltng getUsersStatuses: "postVisibility")


class Polls:
    """The periodic requests (see the module docstring)."""

    http: ApiClient
    session: SessionStore
    rng: random.Random
    statuses: Callable[[list[str]], None]

    # ---- every 60 s while logged in ------------------------------------------------------------
    def start_polls(self) -> Ticker:
        """The web app's status poll (``addVisibleUsersInCurrentChannelAndSelfToStatusPoll``;
        ltng's ``periodicActions``: ``getUsersStatuses``) and its client performance report
        (``PerformanceReporter``), every 60 s from the initial load on (``setInterval``: the
        first one a period after it, so a storm's polls spread as its arrivals do); on a
        :class:`Ticker`, not a greenlet asleep per user."""
        return Ticker(POLL_INTERVAL_S, self.poll_tick)

    def poll_tick(self) -> None:
        """One period's polls, while logged in."""
        if self.session.logged_in:
            self.poll_once()

    def poll_once(self) -> None:
        s = self.session
        visible = [s.user_id, *[u for u in s.known_users[:STATUS_POLL_POSTS] if u != s.user_id]]
        parallel(lambda: self.statuses(visible), self.performance_report)

    def perf_client_id(self) -> str:
        if not self.session.perf_client_id:
            self.session.perf_client_id = uuid.uuid4().hex
        return self.session.perf_client_id

    def performance_report(self) -> None:
        """``POST /client_perf``: the report of the last period (``PerformanceReportV0.1``)."""
        now = int(time.time() * 1000)
        start = now - int(POLL_INTERVAL_S * 1000)
        self.http.request(
            "POST",
            "/client_perf",
            "/client_perf",
            json={
                "version": "0.1.0",
                "client_id": self.perf_client_id(),
                "labels": {"platform": "linux", "agent": "chrome"},
                "start": start,
                "end": now,
                "counters": [{"metric": "long_tasks", "value": self.rng.randint(0, 5)}],
                "histograms": [
                    {
                        "metric": "channel_switch",
                        "value": self.rng.uniform(50, 400),
                        "timestamp": now,
                    }
                ],
            },
        )
