"""Options of the campaign's result commands (`mmload advise`, `architectures --docs`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from mmload.config.base import StrictModel
from mmload.config.bounds import MAX_USERS, Count, Number

MAX_HEADROOM_PCT = 1000.0


class AdviseOptions(StrictModel):
    """`mmload advise`: the users to serve, the headroom above them, the version measured."""

    users: Count(1, MAX_USERS) = Field(..., description="concurrent users to serve")
    headroom: Number(0, MAX_HEADROOM_PCT) = Field(
        30.0, description="percent above --users that the measured supported users must cover"
    )
    version: str | None = Field(
        None, min_length=1, max_length=80, description="the measured version (label) to use"
    )

    @field_validator("headroom", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        """``30%``, ``30`` and ``30.5 %`` are all percentages; anything else is refused."""
        if not isinstance(value, str):
            return value
        text = value.strip().removesuffix("%").strip()
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"must be a percentage such as 30% (got {value!r})") from None
