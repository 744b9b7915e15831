"""The web client's WebSocket against the simulator: hello, pings, reconnect after a drop."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("ws_drop_check.py")


def test_pings_and_reconnects_with_the_backoff_after_a_drop(sim: str) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), sim],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard: the script waits up to 30 s for the reconnect
        cwd=Path(__file__).parents[2],
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    samples = res["samples"]
    connects = [s for s in samples if s["name"] == "WS /api/v4/websocket"]
    pings = [s for s in samples if s["name"] == "WS ping"]
    assert [c["ok"] for c in connects] == [True, True], connects
    assert connects[1]["ctx"].get("page_load_context") == "reconnect"
    # the reconnect waited for the backoff it drew (0.5 s minimum + up to 0.2 s jitter) after
    # the cut: the delay is the socket's own record, the wait only has a lower bound in time
    assert 0.5 <= res["backoff_s"] < 0.7
    assert connects[1]["at"] - res["cut_at"] >= res["backoff_s"]
    assert res["connected"] and res["connection_id"]
    ok_pings = [p for p in pings if p["ok"]]
    assert len([p for p in ok_pings if p["at"] < res["cut_at"]]) >= 2
    assert [p for p in ok_pings if p["at"] > connects[1]["at"]], "pings resume after reconnect"
