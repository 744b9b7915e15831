"""Small network helpers shared by every layer (a bottom utility: imports nothing of mmload)."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free right now, chosen by the kernel (bind to port 0).

    Someone else may take it before it is used: prefer letting a server bind port 0 itself and
    report its address (``mmload sim --port 0`` does). Use this only where a port number must be
    known before the server starts, e.g. Locust's master port handed to its workers.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
