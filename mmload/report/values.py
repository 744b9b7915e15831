"""How values look in reports: table cells, percentages, Go-style durations, JSON-safe values."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

MISSING = "\N{EN DASH}"  # an empty cell


def clean(value: Any) -> Any:
    """A JSON-safe value: NaN/inf -> None, numpy -> Python, times -> ISO-8601."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NaT or value is None:
        return None
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat().replace("+00:00", "Z")
    return value


def records(df: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    """A data frame as a list of JSON-safe row objects."""
    if df is None:
        return None
    return [clean(r) for r in df.astype(object).where(df.notna(), None).to_dict("records")]


def to_json(doc: Any) -> str:
    """Stable, indented JSON."""
    return json.dumps(clean(doc), indent=2, ensure_ascii=False) + "\n"


def missing(value: Any) -> bool:
    """None, NaN or NaT."""
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell: numbers with fixed decimals, empty for missing."""
    if missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        v = float(value)
        if v != 0 and abs(v) < 10 ** (1 - digits) * 5:  # too small for the fixed decimals
            return f"{v:.3g}"
        return f"{v:,.{digits}f}"
    return str(value)


def pct(value: Any, digits: int = 2) -> str:
    """A ratio as a percentage."""
    return MISSING if missing(value) else f"{100 * float(value):.{digits}f} %"


def go_duration(ms: float | None) -> str:
    """Milliseconds rounded to whole ms and written like Go's time.Duration (as ltctl does)."""
    if missing(ms):
        return MISSING
    total = round(ms)
    if total == 0:
        return "0s"
    sign, total = ("-" if total < 0 else ""), abs(total)
    if total < 1000:
        return f"{sign}{total}ms"
    minutes, rest_ms = divmod(total, 60_000)
    hours, minutes = divmod(minutes, 60)
    secs = f"{rest_ms / 1000:.3f}".rstrip("0").rstrip(".")
    head = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return f"{sign}{head}{secs}s"
