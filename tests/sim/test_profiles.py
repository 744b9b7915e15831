"""Each server-cost profile's effect, measured through real HTTP requests to a simulator:
the login limiter (429 + headers past the burst, keyed by peer address), the login mutex
(serialised password checks), the worker pool (FIFO queueing raises latency; capacity
K*1000/S), and the password hash formats and costs (bcrypt cost 10, PBKDF2 600k)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from mmload.config.sim import NAMED_PROFILES, Profile, RateLimit, SimSettings, WorkerPool
from mmload.sim.costs import GcraLimiter, check_password, hash_password
from mmload.sim.server import SimHandle, start_in_thread
from tests.sim.conftest import SMALL

PASSWORD = "Loadtest-1!"


def settings_with(profile: Profile) -> SimSettings:
    return SimSettings(port=0, metrics_port=0, population=SMALL, profile=profile)


def login(url: str, n: int, **headers: str) -> requests.Response:
    return requests.post(
        url + "/api/v4/users/login",
        headers=headers,
        timeout=30,
        json={"login_id": f"user-{n}", "password": PASSWORD},
    )


def test_limiter_429_with_headers_past_the_burst() -> None:
    # 0.5/s (one token per 2 s) so that a loaded CI machine cannot refill a token mid-burst;
    # the real 5/s refill is checked on the limiter itself below, with a fake clock.
    profile = Profile(login_rate_limit=RateLimit(per_sec=0.5, burst=10))
    with start_in_thread(settings_with(profile)) as sim:
        session = requests.Session()
        results = []
        for i in range(12):  # as fast as one client can: well within one emission interval
            results.append(
                session.post(
                    sim.url + "/api/v4/users/login",
                    timeout=5,
                    json={"login_id": f"user-{i + 1}", "password": PASSWORD},
                    headers={"X-Forwarded-For": f"10.0.0.{i}"},
                )
            )
        codes = [r.status_code for r in results]
        assert codes[:11] == [200] * 11, codes  # burst 10 = 11 at once (GCRA, throttled)
        refused = results[11]
        assert refused.status_code == 429  # X-Forwarded-For ignored: one bucket per peer
        assert refused.text == "limit exceeded\n"
        assert refused.headers["Content-Type"].startswith("text/plain")
        assert refused.headers["X-RateLimit-Limit"] == "11"
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert int(refused.headers["X-RateLimit-Reset"]) >= 1
        assert refused.headers["Retry-After"] in ("1", "2")
        first = results[0].headers
        assert first["X-RateLimit-Limit"] == "11" and first["X-RateLimit-Remaining"] == "10"
        assert "Retry-After" not in first
        # Other endpoints are not limited; the refusal never reached the handler metrics.
        assert requests.get(sim.url + "/api/v4/system/ping", timeout=5).status_code == 200
        metrics = requests.get(sim.metrics_url, timeout=5).text
        assert (
            'handler="login",method="POST",origin_client="web",page_load_context="",'
            'status_code="429"' not in metrics
        )
        assert "mattermost_login_logins_total 11.0" in metrics


def test_gcra_refills_one_request_per_emission_interval() -> None:
    now = [1_000_000_000_000]
    limiter = GcraLimiter(5, 10, clock=lambda: now[0])
    decisions = [limiter.check("10.0.0.1") for _ in range(12)]
    assert [d.remaining for d in decisions[:11]] == list(range(10, -1, -1))
    assert decisions[11].limited and decisions[11].retry_after_s == pytest.approx(0.2)
    assert not limiter.check("10.0.0.2").limited  # another peer has its own bucket
    now[0] += 200_000_000  # one emission interval (200 ms) later: exactly one more
    assert not limiter.check("10.0.0.1").limited
    assert limiter.check("10.0.0.1").limited
    now[0] += 2_200_000_000  # a full tolerance later: the whole burst again
    assert sum(not limiter.check("10.0.0.1").limited for _ in range(12)) == 11


def _concurrent_logins(url: str, users: range) -> list[int]:
    with ThreadPoolExecutor(len(users)) as pool:
        return [r.status_code for r in pool.map(lambda n: login(url, n), users)]


def test_login_mutex_serialises_password_checks() -> None:
    base = Profile(password_hash="bcrypt", hash_threads=4)
    with start_in_thread(settings_with(base.model_copy(update={"login_mutex": True}))) as sim:
        codes = _concurrent_logins(sim.url, range(1, 7))
        max_active = sim.call(lambda: sim.sim.passwords.max_active)
    assert codes == [200] * 6
    assert max_active == 1  # the simulator's own count: never two checks at once
    with start_in_thread(settings_with(base)) as sim:
        codes = _concurrent_logins(sim.url, range(1, 7))
        parallel = sim.call(lambda: sim.sim.passwords.max_active)
    assert codes == [200] * 6
    assert parallel > 1  # without the mutex, checks overlap in the hash thread pool


class PoolRecorder:
    """The simulator's worker pool, observed from the test: each request's arrival and
    scheduled start (in hand-over order) and each slot's scheduled release, in the pool's own
    clock. The test can also hold slots itself, so it decides when the queue moves."""

    def __init__(self, sim: SimHandle) -> None:
        self.sim = sim
        self.pool = sim.sim.pool
        self.starts: list[tuple[float, float]] = []  # (arrival, start)
        self.releases: list[float] = []
        self._acquire, self._release = self.pool.acquire, self.pool.release
        sim.call(self._install)

    def _install(self) -> None:
        pool = self.pool

        async def acquire() -> float:
            arrival = pool.clock()
            start = await self._acquire()
            self.starts.append((arrival, start))
            return start

        def release(finished_at: float) -> None:
            self.releases.append(finished_at)
            self._release(finished_at)

        pool.acquire, pool.release = acquire, release

    def hold_all_slots(self) -> None:
        """Take every slot for the test (not recorded): requests now queue behind them."""
        size = self.pool.size
        held = self.sim.call(lambda: [asyncio.ensure_future(self._acquire()) for _ in range(size)])
        wait_for(lambda: self.sim.call(lambda: all(t.done() for t in held)), "the held slots")

    def free_held_slots(self) -> float:
        """Give the held slots back at the pool's current time; return that instant."""

        def free() -> float:
            now = self.pool.clock()
            for _ in range(self.pool.size):
                self._release(now)
            return now

        return float(self.sim.call(free))  # type: ignore[arg-type]

    def queued(self) -> int:
        return int(self.sim.call(lambda: self.pool.queued))  # type: ignore[arg-type]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll until ``condition()``; a hang guard, not a measurement."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_worker_pool_queues_fifo_and_latency_grows() -> None:
    """K slots x S ms: requests start first come first served, K per S, so each K places
    further back in the queue wait one more service time. Measured in the pool's own
    scheduled times while the test holds the slots: no wall-clock assertion."""
    service = 0.05
    profile = Profile(worker_pool=WorkerPool(size=2, service_ms=service * 1000))  # 40 req/s
    with start_in_thread(settings_with(profile)) as sim:
        token = login(sim.url, 1).headers["Token"]
        rec = PoolRecorder(sim)

        def me(_: int) -> int:
            return requests.get(
                sim.url + "/api/v4/users/me",
                timeout=30,
                headers={"Authorization": f"Bearer {token}"},
            ).status_code

        assert me(0) == 200  # alone: it holds a slot for the service time
        ((_, start),), (released,) = rec.starts, rec.releases
        assert released - start >= service - 1e-9
        rec.starts.clear()
        rec.releases.clear()

        rec.hold_all_slots()
        with ThreadPoolExecutor(10) as threads:
            codes = threads.map(me, range(10))
            wait_for(lambda: rec.queued() == 10, "ten queued requests")
            freed_at = rec.free_held_slots()
            assert list(codes) == [200] * 10
    arrivals = [a for a, _ in rec.starts]
    starts = [s for _, s in rec.starts]
    assert len(starts) == 10 and arrivals == sorted(arrivals)  # FIFO: served in arrival order
    assert starts[:2] == [freed_at, freed_at]  # the first two take the freed slots at once
    for place, begun in enumerate(starts):  # capacity K per S: two more each service time
        assert begun - freed_at >= (place // 2) * service - 1e-9, (place, begun - freed_at)
    assert starts[-1] - freed_at >= 4 * service - 1e-9  # the last waited four rounds more
    assert len(rec.releases) == 10
    held = [f - s for f, s in zip(sorted(rec.releases), sorted(starts), strict=True)]
    assert min(held) >= service - 1e-9  # every request held its slot for the service time


def test_worker_pool_queue_raises_latency_in_virtual_time() -> None:
    """10 requests at once on 2 slots x 50 ms: FIFO rounds start at 0, 50, ... 200 ms."""
    from mmload.sim.costs import FifoWorkerPool

    now = [0.0]
    pool = FifoWorkerPool(WorkerPool(size=2, service_ms=50), clock=lambda: now[0])

    async def run() -> list[float]:
        waiters = [asyncio.ensure_future(pool.acquire()) for _ in range(10)]
        await asyncio.sleep(0)
        starts: list[float] = []
        for _ in range(5):  # each round: the two holders release at their scheduled finish
            done = [w for w in waiters if w.done() and w.result() not in starts]
            for w in done:
                starts.append(w.result())
            for start in sorted(done, key=lambda w: w.result())[:2]:
                pool.release(start.result() + 0.05)
            await asyncio.sleep(0)
        return sorted(starts)

    starts = asyncio.run(run())
    assert starts == pytest.approx([0.0, 0.0, 0.05, 0.05, 0.1, 0.1, 0.15, 0.15, 0.2, 0.2])


def test_worker_pool_queue_max_answers_503() -> None:
    """One slot, one queue place: with the slot held, the first request waits, the second is
    refused at once with 503; freeing the slot serves the one that waited."""
    profile = Profile(worker_pool=WorkerPool(size=1, service_ms=10, queue_max=1))
    with start_in_thread(settings_with(profile)) as sim, ThreadPoolExecutor(2) as threads:
        rec = PoolRecorder(sim)
        rec.hold_all_slots()

        def ping() -> requests.Response:
            return requests.get(sim.url + "/api/v4/system/ping", timeout=30)

        waiting = threads.submit(ping)
        wait_for(lambda: rec.queued() == 1, "the queued request")
        refused = ping()
        assert refused.status_code == 503
        assert refused.json()["id"] == "api.context.server_busy.app_error"
        assert not waiting.done()  # still queued behind the held slot
        rec.free_held_slots()
        assert waiting.result(30).status_code == 200


def test_hash_formats_and_verification() -> None:
    bcrypt_hash = hash_password(NAMED_PROFILES["v10.11"], PASSWORD)
    assert bcrypt_hash.startswith("$2a$10$") and len(bcrypt_hash) == 60
    pbkdf2 = hash_password(NAMED_PROFILES["v11.9"], PASSWORD)
    prefix, salt, key = pbkdf2.rsplit("$", 2)
    assert prefix == "$pbkdf2$f=SHA256,w=600000,l=32"
    assert len(salt) == 22 and len(key) == 43  # 16- and 32-byte values, unpadded base64
    for stored in (bcrypt_hash, pbkdf2):
        assert check_password(stored, PASSWORD)
        assert not check_password(stored, PASSWORD + "x")


@pytest.mark.parametrize("name", ["v10.11", "v11.9"])
def test_named_profile_login_pays_the_hash(name: str) -> None:
    profile = NAMED_PROFILES[name]
    with start_in_thread(settings_with(profile)) as sim:
        resp = login(sim.url, 2)
        hello = requests.get(sim.url + "/api/v4/system/ping", timeout=5)
        stored = sim.call(lambda: sim.sim.passwords.stored_formats())
        checks = sim.call(lambda: sim.sim.passwords.max_active)
    assert resp.status_code == 200
    assert stored["bcrypt"].startswith("$2a$10$")  # v11.9's seeded users come from bcrypt
    assert set(stored) == ({"bcrypt"} if name == "v10.11" else {"bcrypt", "pbkdf2"})
    # the login compared the password with that stored hash: it paid the hash's cost (the
    # simulator's own count, not a statement about this CPU's speed)
    assert checks == 1
    assert hello.headers["X-Version-Id"].startswith(profile.server_version + ".")


def test_named_profiles_model_the_documented_versions() -> None:
    p = NAMED_PROFILES
    assert p["fast"].password_hash == "none" and not p["fast"].login_mutex
    assert p["v10.11"].password_hash == "bcrypt" and p["v10.11"].login_mutex
    assert p["v10.11"].login_rate_limit is None
    assert p["v11.5"].password_hash == "pbkdf2" and p["v11.5"].login_mutex
    assert p["v11.5"].login_rate_limit == RateLimit(per_sec=5, burst=10)
    assert p["v11.9"].password_hash == "pbkdf2" and not p["v11.9"].login_mutex
    assert p["overload"].worker_pool is not None


def test_pool_capacity_survives_late_timers() -> None:
    """Scheduled hand-over: a holder woken late does not push back the next request's
    service, so K slots still complete K/S requests per second of (virtual) time."""

    from mmload.sim.costs import FifoWorkerPool

    now = [100.0]
    pool = FifoWorkerPool(WorkerPool(size=1, service_ms=10), clock=lambda: now[0])

    async def run() -> list[float]:
        starts = [await pool.acquire()]
        waiter = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0)
        now[0] += 0.025  # the first holder is woken 15 ms late
        pool.release(starts[0] + 0.010)  # ...but releases at its scheduled finish
        starts.append(await waiter)
        return starts

    first, second = asyncio.run(run())
    assert first == 100.0
    assert second == pytest.approx(100.010)  # starts at the scheduled hand-over, not at 100.025


def test_a_pool_degrades_at_its_time_in_virtual_time() -> None:
    """From ``degrade_after_s`` after the pool started, a request holds its slot
    ``degraded_service_ms``; before, ``service_ms``. One of the two alone is refused."""
    from mmload.sim.costs import FifoWorkerPool

    now = [100.0]
    spec = WorkerPool(size=1, service_ms=10, degrade_after_s=5, degraded_service_ms=50)
    pool = FifoWorkerPool(spec, clock=lambda: now[0])

    async def handler() -> str:
        return "ok"

    async def served_at(t: float) -> float:
        now[0] = t
        await pool.serve(handler)
        return pool.idle[-1]  # the slot is free from the scheduled finish

    assert asyncio.run(served_at(104.9)) == pytest.approx(104.910)
    assert asyncio.run(served_at(105.0)) == pytest.approx(105.050)
    with pytest.raises(ValueError, match="together"):
        WorkerPool(size=1, service_ms=10, degrade_after_s=5)
