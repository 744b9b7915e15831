"""Running the simulator: in the CLI (until SIGINT/SIGTERM), in a coroutine, or in a thread.

Port 0 binds a free ephemeral port; the real address is in ``url`` / ``metrics_url``.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from mmload.config.sim import SimSettings
from mmload.errors import UserError
from mmload.sim.app import Simulator
from mmload.sim.costs import GcraLimiter
from mmload.sim.population import Population


@dataclass
class RunningSim:
    """A started simulator inside an event loop."""

    sim: Simulator
    url: str
    metrics_url: str | None
    runners: list[web.AppRunner]

    async def stop(self) -> None:
        for runner in reversed(self.runners):
            await runner.cleanup()


def _bind(host: str, port: int, what: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise UserError(f"cannot listen on {host}:{port}: {reason}", field=what) from None
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


async def start(settings: SimSettings, population: Population | None = None) -> RunningSim:
    """Build the simulator and listen (HTTP + WebSocket, and metrics unless disabled)."""
    api_sock = _bind(settings.host, settings.port, "--port")
    metrics_sock = None
    if settings.metrics_port is not None:
        try:
            metrics_sock = _bind(settings.host, settings.metrics_port, "--metrics-port")
        except UserError:
            api_sock.close()
            raise
    sim = Simulator(settings, population)
    url = _url(settings.host, api_sock)
    sim.set_site_url(url)
    seeded = await sim.passwords.stored_hash(settings.population.password)  # hash once, up front
    if settings.database_url is not None:
        from mmload.sim.pgstore import PostgresStore

        try:
            sim.core.store = await PostgresStore.connect(settings, sim.pop, sim.metrics, seeded)
        except BaseException:
            api_sock.close()
            if metrics_sock is not None:
                metrics_sock.close()
            sim.passwords.close()
            raise
    runner = web.AppRunner(sim.app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    await web.SockSite(runner, api_sock).start()
    runners = [runner]
    metrics_url = None
    if metrics_sock is not None:
        mapp = web.Application()

        async def metrics(_request: web.Request) -> web.Response:
            body = sim.metrics.exposition()
            return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})

        async def limiters(_request: web.Request) -> web.Response:
            return web.json_response(limiter_view(sim))

        mapp.router.add_get("/metrics", metrics)
        mapp.router.add_get("/limiters", limiters)
        mrunner = web.AppRunner(mapp, access_log=None, handle_signals=False)
        await mrunner.setup()
        await web.SockSite(mrunner, metrics_sock).start()
        runners.append(mrunner)
        metrics_url = _url(settings.host, metrics_sock) + "/metrics"
    return RunningSim(sim, url, metrics_url, runners)


def limiter_view(sim: Simulator) -> dict[str, dict[str, dict[str, int]] | None]:
    """Each limiter's keys (client addresses, or tokens with ``VaryByUser``) with the requests
    it passed and refused (bounded as the limiter's own table): the simulator's view of who sent
    what, served beside /metrics for tests and operators."""

    def view(limiter: GcraLimiter | None) -> dict[str, dict[str, int]] | None:
        if limiter is None:
            return None
        return {"allowed": dict(limiter.allowed_keys), "refused": dict(limiter.limited_keys)}

    return {"login": view(sim.limiter), "global": view(sim.global_limiter)}


async def serve_until_signal(settings: SimSettings, on_ready: Callable[[RunningSim], None]) -> None:
    """Run until SIGINT or SIGTERM (the `mmload sim` command)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    running = await start(settings)
    try:
        on_ready(running)
        await stop.wait()
    finally:
        await running.stop()


class SimHandle:
    """A simulator running on its own event loop in a background thread (for tests and tools).

    ``with start_in_thread(settings) as sim: requests.get(sim.url + "/api/v4/system/ping")``
    """

    def __init__(self, settings: SimSettings, population: Population | None = None):
        self.settings = settings
        self._population = population
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._running: RunningSim | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="mmload-sim", daemon=True)

    @property
    def url(self) -> str:
        assert self._running is not None
        return self._running.url

    @property
    def metrics_url(self) -> str | None:
        assert self._running is not None
        return self._running.metrics_url

    @property
    def sim(self) -> Simulator:
        """The simulator object (read its state only through :meth:`call`)."""
        assert self._running is not None
        return self._running.sim

    def start(self, timeout: float = 30.0) -> SimHandle:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("simulator did not start")
        if self._error is not None:
            raise self._error
        return self

    def call(self, fn: Callable[[], object]) -> object:
        """Run ``fn`` on the simulator's loop and return its result (thread-safe reads)."""

        async def run() -> object:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            self._running = await start(self.settings, self._population)
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self._running.stop()

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)

    def __enter__(self) -> SimHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(
    settings: SimSettings | None = None, population: Population | None = None
) -> SimHandle:
    """Start a simulator in a background thread; ``settings`` default to free ports."""
    if settings is None:
        settings = SimSettings(port=0, metrics_port=0)
    return SimHandle(settings, population).start()
