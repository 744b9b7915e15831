"""Server costs that shape a login storm: password hashing, the login mutex, the login rate
limiter (GCRA) and a bounded worker pool. Each piece is small and tested on its own."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import math
import os
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import bcrypt

from mmload.config.sim import Profile, WorkerPool

T = TypeVar("T")
PBKDF2_SALT_BYTES = 16
PBKDF2_KEY_BYTES = 32


# -- password hashes ---------------------------------------------------------------------------
def hash_password(profile: Profile, password: str) -> str:
    """Hash ``password`` the way the modelled server stores it.

    bcrypt: ``$2a$<cost>$…`` (Go's x/crypto/bcrypt). PBKDF2 (v11+):
    ``$pbkdf2$f=SHA256,w=<iterations>,l=32$<salt>$<hash>`` with unpadded standard base64.
    ``none``: the plain text (the cheap default profile).
    """
    pw = password.encode()
    if profile.password_hash == "bcrypt":
        return bcrypt.hashpw(pw, bcrypt.gensalt(profile.bcrypt_cost, prefix=b"2a")).decode()
    if profile.password_hash == "pbkdf2":
        salt = os.urandom(PBKDF2_SALT_BYTES)
        key = hashlib.pbkdf2_hmac("sha256", pw, salt, profile.pbkdf2_iterations, PBKDF2_KEY_BYTES)
        params = f"f=SHA256,w={profile.pbkdf2_iterations},l={PBKDF2_KEY_BYTES}"
        return f"$pbkdf2${params}${_b64(salt)}${_b64(key)}"
    return password


def check_password(stored: str, password: str) -> bool:
    """Compare ``password`` with a stored hash of any supported format (CPU-bound)."""
    pw = password.encode()
    if stored.startswith("$2"):
        return bcrypt.checkpw(pw, stored.encode())
    if stored.startswith("$pbkdf2$"):
        _, _, params, salt, key = stored.split("$")
        fields = dict(p.split("=") for p in params.split(","))
        want = _unb64(key)
        got = hashlib.pbkdf2_hmac("sha256", pw, _unb64(salt), int(fields["w"]), int(fields["l"]))
        return hmac.compare_digest(got, want)
    return hmac.compare_digest(stored.encode(), pw)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


class PasswordChecker:
    """Checks passwords with the profile's hash in a thread pool, optionally one at a time.

    One stored hash per (format, password) is computed once (lazily) and cached: every seeded
    user shares the population password, so startup never hashes 20,000 passwords, while every
    login still pays one real hash comparison. When the seeded users' passwords are stored in
    another format than the profile's (``seeded_password_hash``: bcrypt users of a v11 server),
    a user's first good login also pays the new hash (the re-hash the server writes back).
    """

    def __init__(self, profile: Profile):
        self.profile = profile
        threads = profile.hash_threads or os.cpu_count() or 2
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mmload-hash")
        self.mutex = asyncio.Lock() if profile.login_mutex else None
        self.seeded_format = profile.seeded_password_hash or profile.password_hash
        self._stored: dict[tuple[str, str], str] = {}
        self.rehashed: set[int] = set()  # users whose password was re-hashed at login
        self.active = 0  # checks in progress right now (the mutex test reads the maximum)
        self.max_active = 0

    def stored_formats(self) -> dict[str, str]:
        """The cached stored hash of each format in use (format -> hash)."""
        return {fmt: stored for (fmt, _pw), stored in self._stored.items()}

    async def stored_hash(self, password: str, fmt: str | None = None) -> str:
        """The stored hash of ``password`` in ``fmt`` (default: the seeded format), once."""
        fmt = fmt or self.seeded_format
        stored = self._stored.get((fmt, password))
        if stored is None:
            loop = asyncio.get_running_loop()
            profile = self.profile.model_copy(update={"password_hash": fmt})
            stored = await loop.run_in_executor(self.executor, hash_password, profile, password)
            self._stored[(fmt, password)] = stored
        return stored

    async def verify(self, number: int, real_password: str, attempt: str) -> tuple[bool, str]:
        """Compare ``attempt`` to user ``number``'s password at the profile's cost. Returns
        whether it matched and, when the login re-hashed a legacy hash, the new stored hash."""
        current = self.profile.password_hash
        fmt = current if number in self.rehashed else self.seeded_format
        stored = await self.stored_hash(real_password, fmt)
        if self.mutex is None:
            return await self._check(number, stored, attempt, fmt != current)
        async with self.mutex:
            return await self._check(number, stored, attempt, fmt != current)

    async def _check(
        self, number: int, stored: str, attempt: str, rehash: bool
    ) -> tuple[bool, str]:
        ok = await self._compare(stored, attempt)
        if not (ok and rehash):
            return ok, ""
        loop = asyncio.get_running_loop()
        new = await loop.run_in_executor(self.executor, hash_password, self.profile, attempt)
        self.rehashed.add(number)
        self._stored.setdefault((self.profile.password_hash, attempt), new)
        return True, new

    async def _compare(self, stored: str, attempt: str) -> bool:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if not stored.startswith("$"):
                return check_password(stored, attempt)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, check_password, stored, attempt)
        finally:
            self.active -= 1

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


# -- login rate limiter ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one limiter check and the values of its response headers."""

    limited: bool
    limit: int
    remaining: int
    reset_after_s: float
    retry_after_s: float  # -1 when allowed

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*`` (always) and ``Retry-After`` (when refused), seconds rounded up."""
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_after_s)),
        }
        if self.retry_after_s >= 0:
            out["Retry-After"] = str(math.ceil(self.retry_after_s))
        return out


class GcraLimiter:
    """The GCRA limiter of throttled/v2 as Mattermost configures it for ``/login``.

    Emission interval T = 1/per_sec; delay variation tolerance = T*(burst+1), so burst+1
    requests pass at once; the limit header is burst+1. Keys are kept in an LRU of
    ``max_keys`` entries (10,000 in Mattermost). The keys refused and passed are counted (in
    LRUs of the same size) so a test can see which clients were limited.
    """

    def __init__(self, per_sec: float, burst: int, max_keys: int = 10_000, clock=time.monotonic_ns):
        self.interval = round(1e9 / per_sec)  # nanoseconds: exact arithmetic, as in Go
        self.tolerance = self.interval * (burst + 1)
        self.limit = burst + 1
        self.max_keys = max_keys
        self.clock = clock
        self._tat: OrderedDict[str, int] = OrderedDict()
        self.limited_keys: OrderedDict[str, int] = OrderedDict()  # key -> refusals (bounded)
        self.allowed_keys: OrderedDict[str, int] = OrderedDict()  # key -> passes (bounded)

    def _count(self, table: OrderedDict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1
        table.move_to_end(key)
        if len(table) > self.max_keys:
            table.popitem(last=False)

    def check(self, key: str) -> RateDecision:
        """Count one request for ``key``."""
        now = self.clock()
        tat = self._tat.get(key, now)
        new_tat = max(tat, now) + self.interval
        diff = now - (new_tat - self.tolerance)
        if diff < 0:
            ttl = max(tat - now, 0)
            self._count(self.limited_keys, key)
            return RateDecision(True, self.limit, 0, ttl / 1e9, -diff / 1e9)
        self._count(self.allowed_keys, key)
        self._tat[key] = new_tat
        self._tat.move_to_end(key)
        if len(self._tat) > self.max_keys:
            self._tat.popitem(last=False)
        ttl = new_tat - now
        remaining = max((self.tolerance - ttl) // self.interval, 0)
        return RateDecision(False, self.limit, remaining, ttl / 1e9, -1)


# -- worker pool -------------------------------------------------------------------------------
class PoolFull(Exception):
    """The worker pool's queue is at ``queue_max``."""


class FifoWorkerPool:
    """K slots, each held ``service_ms`` by a request; waiters are served first come first served.

    A request's latency is its queue wait plus ``max(service_ms, handler time)``, so the pool
    serves at most ``size * 1000 / service_ms`` requests per second and latency grows without
    bound (or up to ``queue_max`` waiters, then 503) once offered load exceeds that.

    Slots keep *scheduled* times: a slot handed over at its holder's scheduled finish starts the
    next request at that instant, even when the event loop wakes the holder late (a busy CPU).
    Timer lateness therefore delays individual responses but never lowers the pool's capacity.
    """

    def __init__(self, pool: WorkerPool, clock=time.monotonic):
        self.size = pool.size
        self.service_s = pool.service_ms / 1000.0
        self.queue_max = pool.queue_max
        self.clock = clock
        self.degrade_at: float | None = None  # when the service time becomes degraded_s
        if pool.degrade_after_s is not None and pool.degraded_service_ms is not None:
            self.degrade_at = clock() + pool.degrade_after_s
            self.degraded_s = pool.degraded_service_ms / 1000.0
        self.idle: deque[float] = deque([0.0] * pool.size)  # free slots: when each got free
        self.waiters: deque[asyncio.Future[float]] = deque()

    @property
    def queued(self) -> int:
        return len(self.waiters)

    async def acquire(self) -> float:
        """Take a slot in FIFO order; return the scheduled start of this request's service.

        Raises PoolFull when ``queue_max`` requests are already waiting.
        """
        arrival = self.clock()
        if self.idle and not self.waiters:
            return max(arrival, self.idle.popleft())
        if self.queue_max is not None and len(self.waiters) >= self.queue_max:
            raise PoolFull
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        try:
            handed_at = await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(fut.result())  # handed a slot just as we were cancelled
            else:
                with contextlib.suppress(ValueError):
                    self.waiters.remove(fut)
            raise
        return max(arrival, handed_at)

    def release(self, finished_at: float) -> None:
        """Hand the slot, free from ``finished_at`` (scheduled), to the oldest waiter."""
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(finished_at)
                return
        self.idle.append(finished_at)

    async def serve(self, handler: Callable[[], Awaitable[T]]) -> T:
        """Run ``handler()`` in a slot: wait, run, hold until the scheduled finish, release."""
        start = await self.acquire()
        degraded = self.degrade_at is not None and start >= self.degrade_at
        finish = start + (self.degraded_s if degraded else self.service_s)
        try:
            result = await handler()
            now = self.clock()
            if now >= finish:
                finish = now  # the handler itself took longer than service_ms
            else:
                await asyncio.sleep(finish - now)
            return result
        finally:
            self.release(finish)
