"""The 11.x client's WebSocket resume against the simulator, seen from the client side.

A dropped socket reconnects with its connection id and the next sequence number; the posts made
while it was away arrive, numbered on from where the client stopped, without a new ``hello``,
and the web app's ``reconnect()`` runs once. A reconnect the server cannot resume brings a
``hello`` with a new connection id: the client numbers from 0 again and runs ``restart()`` too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("ws_resume_check.py")


def test_a_kept_connection_id_gets_the_missed_posts_replayed_in_sequence(sim: str) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), sim],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard: the script waits up to 30 s per step
        cwd=Path(__file__).parents[2],
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    events = res["events"]
    assert events[0]["event"] == "hello" and events[0]["seq"] == 0
    after_cut = [e for e in events if e["at"] > res["cut_at"]]
    replayed, rest = after_cut[:3], after_cut[3:]
    assert [e["event"] for e in replayed] == ["posted"] * 3
    assert [e["id"] for e in replayed] == res["posted"]
    nxt = res["expected_next"]
    assert [e["seq"] for e in replayed] == [nxt, nxt + 1, nxt + 2]
    assert res["resumed"] == {
        "connection_id": res["first_id"],
        "connected": True,
        "hooks": ["reconnect"],
    }
    # the unknown connection id: a new one, a hello at seq 0, reconnect() then restart()
    assert [e["event"] for e in rest] == ["hello"] and rest[0]["seq"] == 0
    unknown = res["after_unknown"]
    assert unknown["connection_id"] not in (res["first_id"], "x" * 26)
    assert unknown["hooks"] == ["reconnect", "reconnect", "missed"]
    assert unknown["server_seq"] == 1
