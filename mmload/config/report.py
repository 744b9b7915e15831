"""Options of the reporter (`mmload report`, `compare`, `ceiling`, `import ltng`): the defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mmload.config.base import StrictModel

Format = Literal["md", "html", "json", "junit"]


class ReportOptions(StrictModel):
    """What the report commands write and the thresholds they judge with."""

    stdout_format: Format = Field(
        "md", description="format printed when neither --out nor --format"
    )
    out_formats: list[Format] = Field(
        default_factory=lambda: ["md", "html", "json", "junit"],
        description="formats written into --out DIR when --format is not given",
    )
    min_delta_pct: float = Field(1.0, ge=0, description="compare: hide changes under this %")
    min_delta_ms: float = Field(2.0, ge=0, description="compare: hide changes under this many ms")
    noise_pct: float = Field(5.0, ge=0, description="supported users: Mattermost's noise band, ±%")
    min_samples: int = Field(
        100,
        ge=1,
        description="compare: an endpoint with fewer requests on a side is flagged, not judged "
        "(a p99 needs at least 100 samples to mean anything)",
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level of Welch's t-test")
    top_endpoints: int = Field(
        8, ge=1, description="html: endpoints drawn in the per-endpoint plot"
    )
