"""The ``arrivals:`` of a scenario: the arrival curve's shape (open model).

Every curve but ``uniform`` and ``poisson`` is a rate profile: a list of :class:`Segment`
(a duration and the arrival rate at its start and end, linear in between). The profile gives the
curve's *shape*; the scenario's ``users`` and ``arrival_s`` give its totals, and when the file
leaves them out they are taken from the profile (its integral and its length), see
:func:`curve_totals`. ``--scale`` multiplies both, so the shape stays and its rates follow.

``replay`` is a real curve: per-interval counts (``counts``, or read from a ``csv``, an
``access_log`` or a ``prometheus`` range query by :mod:`mmload.config.curves` when the scenario
is loaded), multiplied by ``scale`` in count and ``time_scale`` in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from mmload.config.base import StrictModel
from mmload.config.bounds import MAX_RATE, MAX_RUN_S, MAX_USERS, Count, Number

MAX_SEGMENTS = 100_000  # a day of 1 s intervals is 86,400
CurveName = Literal["uniform", "poisson", "ramp", "steps", "spike", "replay"]


@dataclass(frozen=True)
class Segment:
    """``duration_s`` seconds of arrivals whose rate goes linearly from ``start`` to ``end``/s."""

    duration_s: float
    start: float
    end: float

    @property
    def arrivals(self) -> float:
        return (self.start + self.end) / 2 * self.duration_s


Rate = Number(0, MAX_RATE)
Duration = Number(0, MAX_RUN_S, lo_open=True)


class UniformCurve(StrictModel):
    """``users`` arrivals spread evenly over ``arrival_s`` (the default, a constant rate)."""

    curve: Literal["uniform"] = "uniform"

    def segments(self) -> list[Segment] | None:
        return None


class PoissonCurve(StrictModel):
    """A Poisson process of ``users`` arrivals over ``arrival_s`` (``users`` points drawn
    uniformly in the window, seeded: the same seed, the same schedule on every worker)."""

    curve: Literal["poisson"]
    seed: Count(0, 2**31 - 1) = 0

    def segments(self) -> list[Segment] | None:
        return None


class RampCurve(StrictModel):
    """A linear rise (or fall) from ``start_per_s`` to ``end_per_s`` over ``duration_s``."""

    curve: Literal["ramp"]
    start_per_s: Rate
    end_per_s: Rate
    duration_s: Duration

    @model_validator(mode="after")
    def _some(self) -> RampCurve:
        if self.start_per_s + self.end_per_s <= 0:
            raise ValueError("no arrivals: start_per_s or end_per_s must be above 0")
        return self

    def segments(self) -> list[Segment]:
        return [Segment(self.duration_s, self.start_per_s, self.end_per_s)]


class Step(StrictModel):
    """One plateau: ``duration_s`` at ``rate_per_s``, or ``users`` arrivals over it."""

    duration_s: Duration
    users: Count(0, MAX_USERS) | None = None
    rate_per_s: Rate | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Step:
        if (self.users is None) == (self.rate_per_s is None):
            raise ValueError("give users or rate_per_s (one of them)")
        return self

    @property
    def rate(self) -> float:
        return self.rate_per_s if self.rate_per_s is not None else self.users / self.duration_s


class StepsCurve(StrictModel):
    """Plateaus one after the other."""

    curve: Literal["steps"]
    steps: list[Step] = Field(..., min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _some(self) -> StepsCurve:
        if not any(s.rate > 0 for s in self.steps):
            raise ValueError("no arrivals: every step is 0")
        return self

    def segments(self) -> list[Segment]:
        return [Segment(s.duration_s, s.rate, s.rate) for s in self.steps]


class SpikeCurve(StrictModel):
    """``baseline_per_s`` for ``duration_s``, but ``peak_per_s`` from ``at_s`` for ``width_s``."""

    curve: Literal["spike"]
    baseline_per_s: Rate
    peak_per_s: Rate
    at_s: Number(0, MAX_RUN_S)
    width_s: Duration
    duration_s: Duration

    @model_validator(mode="after")
    def _inside(self) -> SpikeCurve:
        if self.at_s + self.width_s > self.duration_s:
            raise ValueError("the spike (at_s + width_s) must end within duration_s")
        if self.peak_per_s < self.baseline_per_s or self.peak_per_s <= 0:
            raise ValueError("peak_per_s must be above 0 and at least baseline_per_s")
        return self

    def segments(self) -> list[Segment]:
        b, p = self.baseline_per_s, self.peak_per_s
        parts = [(self.at_s, b), (self.width_s, p), (self.duration_s - self.at_s - self.width_s, b)]
        return [Segment(d, r, r) for d, r in parts if d > 0]


class PromSource(StrictModel):
    """A Prometheus range query (``/api/v1/query_range``) of the server's login rate."""

    url: str = Field(..., pattern=r"^https?://\S+$")
    query: str = Field(
        'sum(rate(mattermost_api_time_count{handler="login"}[1m]))',
        min_length=1,
        description="logins per second (the rate of a counter); or a per-step count, with"
        " values: count",
    )
    start: str = Field(..., description="RFC 3339 or epoch seconds")
    end: str = Field(..., description="RFC 3339 or epoch seconds")
    step_s: Number(1, 86_400) = 10.0
    values: Literal["rate", "count"] = "rate"


class ReplayCurve(StrictModel):
    """A real curve: logins per ``interval_s``, from one source, scaled in count and time."""

    curve: Literal["replay"]
    counts: list[Number(0, MAX_USERS)] | None = Field(
        None,
        max_length=MAX_SEGMENTS,
        description="logins per interval: the curve itself, or its source's once read",
    )
    csv: str | None = Field(
        None, description="CSV of per-interval counts or of timestamps (relative to the scenario)"
    )
    access_log: str | None = Field(
        None, description="nginx (combined) or ALB access log: its POST /api/v4/users/login lines"
    )
    log_format: Literal["nginx", "alb"] = "nginx"
    prometheus: PromSource | None = None
    interval_s: Number(0.001, 86_400) = Field(
        10.0, description="seconds per count (a counts CSV, timestamps binned to it)"
    )
    scale: Number(0.0001, 1000) = Field(1.0, description="multiplies the counts")
    time_scale: Number(0.0001, 1000) = Field(1.0, description="multiplies the time")

    @model_validator(mode="after")
    def _one_source(self) -> ReplayCurve:
        sources = [n for n in ("csv", "access_log", "prometheus") if getattr(self, n)]
        if len(sources) > 1 or (not sources and self.counts is None):
            raise ValueError("give one source: counts, csv, access_log or prometheus")
        if self.counts is not None and not any(c > 0 for c in self.counts):
            raise ValueError("counts: no arrivals (every count is 0)")
        return self

    def segments(self) -> list[Segment] | None:
        """The curve as plateaus, None before its source is read into ``counts``."""
        if self.counts is None:
            return None
        width = self.interval_s * self.time_scale
        return [Segment(width, c * self.scale / width, c * self.scale / width) for c in self.counts]


Arrivals = Annotated[
    UniformCurve | PoissonCurve | RampCurve | StepsCurve | SpikeCurve | ReplayCurve,
    Field(discriminator="curve"),
]

ARRIVALS: TypeAdapter = TypeAdapter(Arrivals)


def with_curve_totals(data: dict) -> dict:
    """Scenario data with ``users`` and ``arrival_s`` taken from its curve's profile where the
    data leaves them out (an invalid curve is left for the model's own validation to name)."""
    try:
        curve = ARRIVALS.validate_python(data["arrivals"])
    except ValidationError:
        return data
    segments = curve.segments()
    if not segments:
        return data
    users, length_s = curve_totals(segments)
    return {"users": users, "arrival_s": length_s, **data}


def curve_totals(segments: list[Segment]) -> tuple[int, float]:
    """A profile's natural ``users`` (its integral, rounded, at least 1) and ``arrival_s``."""
    users = max(1, round(sum(s.arrivals for s in segments)))
    return users, sum(s.duration_s for s in segments)
