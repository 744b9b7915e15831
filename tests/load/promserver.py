"""A real Prometheus (the Debian package) on 127.0.0.1 for the load tests, and a stand-in
node_exporter whose CPU counters grow at rates the test chooses, so a CPU query's answer is
known exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mmload.net import free_port


@contextmanager
def running_prometheus(config: str, tmp: Path, ready_s: float = 60.0) -> Iterator[str]:
    """Prometheus with ``config`` (prometheus.yml text); yields its URL once it is ready
    (within ``ready_s``); stopped by its pid at the end."""
    cfg = tmp / "prometheus.yml"
    cfg.write_text(config)
    log = tmp / "prom.log"
    port = free_port()
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={cfg}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + ready_s
        while True:
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.time() < deadline, log.read_text()[-2000:]
            assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(0.2)
        yield url
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


class NodeCpuExporter:
    """``node_cpu_seconds_total`` as node_exporter names it, for ``busy`` (one fraction per CPU):
    each CPU's idle counter grows by ``1 - busy`` seconds a second, its user counter by ``busy``.
    Also a ``process_cpu_seconds_total`` growing by 3 s/s, which a node CPU query must ignore."""

    def __init__(self, busy: list[float]) -> None:
        self.busy = busy
        self.started = time.monotonic()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.metrics().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def metrics(self) -> str:
        t = 1000.0 + time.monotonic() - self.started
        lines = ["# TYPE node_cpu_seconds_total counter"]
        for cpu, busy in enumerate(self.busy):
            lines.append(f'node_cpu_seconds_total{{cpu="{cpu}",mode="idle"}} {t * (1 - busy):.6f}')
            lines.append(f'node_cpu_seconds_total{{cpu="{cpu}",mode="user"}} {t * busy:.6f}')
        lines += ["# TYPE process_cpu_seconds_total counter", f"process_cpu_seconds_total {3 * t}"]
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
