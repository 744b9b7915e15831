"""``mmload run`` as a master in this process, recording every Locust message it sends to or
receives from its workers (tests/load/test_population_off_the_wire.py).

usage: wire_check.py PASSWORD [SECRET...] -- RUN-ARGS...

Every secret is searched for in every message; the population file is checked for PASSWORD.

Locust's ZeroMQ server is wrapped where it serialises (``send_to_client``) and parses
(``recv_from_client``) messages: the recorded bytes are exactly what crosses the socket, before
ZeroMQ's own framing. The master's population file is stat'ed right after it is written, while
its workers read it. The last line printed is JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import locust.rpc.zmqrpc as zmqrpc

import mmload.load.roles as roles

secrets = sys.argv[1 : sys.argv.index("--")]
password = secrets[0]
run_args = sys.argv[sys.argv.index("--") + 1 :]
wire: list[tuple[str, str, bytes]] = []  # (direction, message type, bytes)
files: list[dict[str, object]] = []

send, recv = zmqrpc.Server.send_to_client, zmqrpc.Server.recv_from_client


def recording_send(self: Any, msg: Any) -> Any:
    wire.append(("to worker", msg.type, msg.serialize()))
    return send(self, msg)


def recording_recv(self: Any) -> Any:
    node, msg = recv(self)
    wire.append(("from worker", msg.type, msg.serialize()))
    return node, msg


zmqrpc.Server.send_to_client = recording_send
zmqrpc.Server.recv_from_client = recording_recv
write_population = roles.write_population


def recording_write(path: Path, population: Any) -> None:
    write_population(path, population)
    files.append(
        {
            "file_mode": path.stat().st_mode & 0o777,
            "dir_mode": path.parent.stat().st_mode & 0o777,
            "has_password": password in path.read_text(encoding="utf-8"),
            "path": str(path),
        }
    )


roles.write_population = recording_write

from mmload.cli import main  # noqa: E402

code = 0
try:
    main(run_args)
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
needles = [s.encode() for s in secrets]
print(
    json.dumps(
        {
            "code": code,
            "types": sorted({f"{d}: {t}" for d, t, _ in wire}),
            "messages": len(wire),
            "with_password": [f"{d}: {t}" for d, t, b in wire if any(n in b for n in needles)],
            "files": files,
        }
    )
)
