"""``mmload run`` in this process with an emulated resolver (tests/load/test_target_guard.py).

usage: pin_check.py HOST ADDRESS MOVED_TO -- RUN-ARGS...

The resolver seam, ``mmload.load.pin.PINNED.resolver``, is replaced: the first lookup of HOST
answers ADDRESS, every later one MOVED_TO (a DNS change in the middle of the run). Only the
lookup is emulated; the run, its workers and their connections are real. The last line printed
is JSON: the lookups made in this (the master's) process and the command's exit code.
"""

from __future__ import annotations

import json
import sys

from mmload.load import pin

host, address, moved_to = sys.argv[1:4]
run_args = sys.argv[sys.argv.index("--") + 1 :]
lookups: list[str] = []


def emulated(name: str) -> list[str]:
    lookups.append(name)
    if name != host:
        raise OSError(f"{name}: not known to the emulated resolver")
    return [address] if len(lookups) == 1 else [moved_to]


pin.PINNED.resolver = emulated

from mmload.cli import main  # noqa: E402

code = 0
try:
    main(run_args)
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
except Exception as exc:
    print(f"error: {exc}", file=sys.stderr)
    code = 1
print(json.dumps({"lookups": lookups, "code": code}))
