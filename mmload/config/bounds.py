"""Bounded, finite numbers for the config models: the one place their limits are checked.

Every count, duration, rate and backoff time a user can type is one of these types, so a value
such as ``users: 10**30``, ``arrival_s: .inf``, ``1e308`` or ``reconnect_min_s: 1e-9`` is refused
when the file (or flag) is read, with the allowed range in the message, instead of allocating
memory or waiting forever later. ``true``/``false`` is never read as a number.

Use them as field types: ``users: Count(1, MAX_USERS) = 100``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

MAX_USERS = 1_000_000  # the largest reference architecture is 200,000 users; the simulator's 1M
DAY_S = 86_400.0
MAX_RUN_S = 30 * DAY_S  # a soak test of a month is already far beyond any real run
MAX_RATE = 1_000_000.0  # requests (or users) per second
MIN_RATE = 0.01


def _fmt(v: float) -> str:
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:g}"


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("not_a_number", "must be a number, not true/false")
    return value


def _int_range(lo: int, hi: int) -> Any:
    def check(value: int) -> int:
        if not lo <= value <= hi:
            raise PydanticCustomError(
                "out_of_range", f"must be between {_fmt(lo)} and {_fmt(hi)} (got {value:.6g})"
            )
        return value

    return check


def _float_range(lo: float, hi: float, lo_open: bool) -> Any:
    low = f"above {_fmt(lo)}" if lo_open else f"at least {_fmt(lo)}"

    def check(value: float) -> float:
        ok = math.isfinite(value) and (value > lo if lo_open else value >= lo) and value <= hi
        if not ok:
            raise PydanticCustomError(
                "out_of_range",
                f"must be a finite number {low} and at most {_fmt(hi)} (got {value:g})",
            )
        return value

    return check


def Count(lo: int, hi: int) -> Any:
    """An integer in ``[lo, hi]`` (not a boolean)."""
    return Annotated[int, BeforeValidator(_not_bool), AfterValidator(_int_range(lo, hi))]


def Number(lo: float, hi: float, *, lo_open: bool = False) -> Any:
    """A finite float in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``), not a boolean."""
    return Annotated[
        float, BeforeValidator(_not_bool), AfterValidator(_float_range(lo, hi, lo_open))
    ]
