"""The requested arrival curve against what the run did, per window of the curve.

run.json's ``arrival_curve`` (the arrivals the scenario's curve asked for in each 10 s window
from the schedule's origin ``t0``) beside the arrivals table's scheduled and started logins
counted in the same windows. Records written before the curve was kept have none: no table.
"""

from __future__ import annotations

import pandas as pd

from mmload import record


def _counts(times: pd.Series, t0: pd.Timestamp, width: float, n: int) -> list[int]:
    idx = ((times.dropna() - t0).dt.total_seconds() // width).astype(int)
    counts = idx[(idx >= 0) & (idx < n)].value_counts()  # a start after the curve is in none
    return [int(counts.get(i, 0)) for i in range(n)]


def curve_windows(run: record.RunMeta, logins: pd.DataFrame | None) -> pd.DataFrame | None:
    """Per window of the requested curve: its start (s from t0), time, requested, scheduled,
    started, and started off requested (a fraction); None without a requested curve."""
    curve = run.arrival_curve
    if curve is None or not curve.requested or logins is None:
        return None
    n, width = len(curve.requested), curve.window_s
    t0 = pd.Timestamp(curve.t0)
    out = pd.DataFrame(
        {
            "window": range(n),
            "start_s": [i * width for i in range(n)],
            "time": [t0 + pd.Timedelta(seconds=i * width) for i in range(n)],
            "requested": curve.requested,
            "scheduled": _counts(logins["scheduled"], t0, width, n),
            "started": _counts(logins["started"], t0, width, n),
        }
    )
    req = out["requested"].where(out["requested"] > 0)
    out["started_off"] = (out["started"] - out["requested"]) / req
    return out
