"""Flags of ``mmload target check`` (validated like a config file; errors name the flag)."""

from __future__ import annotations

from pydantic import Field, field_validator

from mmload.config.base import StrictModel
from mmload.config.bounds import Number
from mmload.config.scenario import normalize_target


class TargetCheckOptions(StrictModel):
    """What `target check` reads and which storm it judges the answers against."""

    target: str = Field(..., pattern=r"^https?://[^\s/]+(/.*)?$")
    scenario: str = Field("sev0-login-storm", min_length=1, description="built-in name or file")
    scale: Number(0.001, 10) = 1.0
    admin_token_file: str | None = Field(None, min_length=1)

    @field_validator("target")
    @classmethod
    def _normal_target(cls, target: str) -> str:
        return normalize_target(target)
