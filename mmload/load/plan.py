"""The plan a process runs: what the master decided (start time, scenario, its share of users).

The master sends each worker its plan in a Locust custom message before spawning, without the
population's password (the worker reads it from its own file: :mod:`mmload.load.population`);
a local run attaches it directly (both through :mod:`mmload.load.context`). A
``MattermostUser`` in a plain locustfile (no plan) gets :func:`default_plan`: closed-model users
that log in as soon as they spawn and run the default action mix.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import gevent

from mmload.config.credentials import Credential, record_name
from mmload.config.scenario import Population, Scenario
from mmload.errors import RunFailed
from mmload.load.pin import PINNED
from mmload.load.population import SECRET_FIELDS, public_fields
from mmload.load.schedule import ArrivalSchedule, Backoff, arrival_schedule, global_index

PLAN_MESSAGE = "mmload_plan"
BATCH_MESSAGE = "mmload_batch"
DONE_MESSAGE = "mmload_done"
FAILED_MESSAGE = "mmload_failed"  # a worker that cannot run its plan says why, then quits


class RateLimiter:
    """A per-process request-rate cap: each caller waits for its slot (gevent-friendly)."""

    def __init__(self, rate_per_s: float):
        self.interval = 1.0 / rate_per_s
        self._next = 0.0

    def wait(self) -> None:
        """Block the calling greenlet until the next request may be sent."""
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            gevent.sleep(slot - now)


@dataclass
class Plan:
    """One process's share of a run."""

    scenario: Scenario
    t0: float | None = None  # epoch seconds of the first scheduled arrival; None: no schedule
    workers: int = 1
    worker_index: int = 0
    worker_name: str = "local"
    schedule_users: int = 0  # users with a scheduled arrival (0: none scheduled)
    herd_drop_at: float | None = None  # epoch seconds at which every socket drops
    flush_s: float = 2.0
    rate_cap: float | None = None  # requests/s for this process
    pins: dict[str, list[str]] = field(default_factory=dict)  # host -> addresses (pin.PINNED)
    sources: list[str] = field(default_factory=list)  # local addresses to send from (round robin)
    counter: itertools.count = field(default_factory=itertools.count)
    limiter: RateLimiter | None = None

    def __post_init__(self) -> None:
        if self.rate_cap and not self.limiter:
            self.limiter = RateLimiter(self.rate_cap)

    @classmethod
    def for_process(
        cls, scenario: Scenario, t0: float | None, processes: int, index: int, name: str
    ) -> Plan:
        """Process ``index`` of ``processes``' share of a run whose first arrival is at ``t0``."""
        from mmload import record  # (pyarrow: not for the users' import path)

        n = max(1, processes)
        herd_at = None
        if scenario.kind == "herd" and t0 is not None:
            herd_at = t0 + arrival_schedule(scenario).duration_s + scenario.herd.settle_s
        return cls(
            scenario=scenario,
            t0=t0,
            workers=n,
            worker_index=index,
            worker_name=name,
            schedule_users=arrival_schedule(scenario).users,
            herd_drop_at=herd_at,
            flush_s=min(record.FLUSH_INTERVAL_S, 2.0),
            rate_cap=scenario.rate_cap / n if scenario.rate_cap else None,
            pins=PINNED.snapshot(),
            sources=list(PINNED.sources),
        )

    @functools.cached_property
    def schedule(self) -> ArrivalSchedule:
        """When the scheduled users arrive (seconds after ``t0``; computed once)."""
        return arrival_schedule(self.scenario, self.schedule_users)

    def next_user_index(self) -> int:
        """The global index of the next user spawned in this process."""
        return global_index(self.worker_index, self.workers, next(self.counter))

    def username(self, index: int) -> str:
        """The name of global user ``index`` (0-based, wrapping around the population) in the
        record: its username, or for a customer's credentials the salted hash of its login id."""
        pop = self.scenario.population
        if pop.accounts is not None:
            return record_name(pop.accounts.salt, self.account(index).login_id)
        return pop.username_pattern.format(i=pop.first_user + index % pop.size)

    def account(self, index: int) -> Credential:
        """How global user ``index`` logs in: its credential from the customer's file, or the
        pattern's username with the population's password."""
        pop = self.scenario.population
        if pop.accounts is not None:
            return pop.accounts.credentials[index % len(pop.accounts.credentials)]
        name = pop.username_pattern.format(i=pop.first_user + index % pop.size)
        return Credential(login_id=name, password=pop.password)

    def typed_name(self, index: int) -> str:
        """What a user types to find global user ``index`` (a mention, a search): its username,
        or a customer's login id up to any ``@``. Sent to the target only, never recorded."""
        pop = self.scenario.population
        if pop.accounts is None:
            return self.username(index)
        return self.account(index).login_id.split("@", 1)[0]

    def credentials(self, index: int) -> tuple[str, str]:
        """Login id and password of global user ``index``."""
        account = self.account(index)
        return account.login_id, account.password

    def arrival_time(self, index: int) -> float | None:
        """Scheduled login time (epoch) of global user ``index``, or None if not scheduled."""
        if self.t0 is None or index >= self.schedule_users:
            return None
        return self.t0 + self.schedule.offset(index)

    def backoff(self) -> Backoff:
        """The reconnect rule from the scenario's WebSocket settings."""
        return Backoff.from_spec(self.scenario.websocket)

    def with_population(self, population: Population, source: str) -> Plan:
        """This plan with a worker's own population (its file, ``source``), which must be the
        one the master planned with (the same users)."""
        if public_fields(population) != public_fields(self.scenario.population):
            raise RunFailed(
                f"{source}: the population differs from the master's scenario "
                f"({public_fields(self.scenario.population)})"
            )
        scenario = self.scenario.model_copy(update={"population": population})
        return dataclasses.replace(self, scenario=scenario)

    def to_message(self) -> dict[str, Any]:
        """The plan as Locust message data (msgpack-serialisable): no password in it."""
        return {
            "scenario": self.scenario.model_dump(
                mode="json", exclude={"population": SECRET_FIELDS}
            ),
            "t0": self.t0,
            "workers": self.workers,
            "worker_index": self.worker_index,
            "worker_name": self.worker_name,
            "schedule_users": self.schedule_users,
            "herd_drop_at": self.herd_drop_at,
            "flush_s": self.flush_s,
            "rate_cap": self.rate_cap,
            "pins": self.pins,
            "sources": self.sources,
        }

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> Plan:
        """Inverse of :meth:`to_message`."""
        data = dict(data)
        data["scenario"] = Scenario.model_validate(data["scenario"])
        return cls(**data)


def default_plan() -> Plan:
    """The plan of a MattermostUser run by plain Locust: no schedule, default steady mix."""
    return Plan(scenario=Scenario(name="locustfile", kind="steady"))
