"""The campaign file (`mmload campaign plan`) and the options of `mmload advise`."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from mmload.config.base import StrictModel
from mmload.config.bounds import DAY_S, MAX_RUN_S, MAX_USERS, Count, Number
from mmload.config.deployment import NAME_RE, Deployment, Overrides
from mmload.config.mattermost import MattermostSettings
from mmload.config.sim import NAMED_PROFILES

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


# -- the campaign file -------------------------------------------------------------------------

LABEL_RE = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,39}$"
MAX_BUDGET_USD = 10_000_000.0


class SimVersion(StrictModel):
    """A simulator's "version": a server-cost profile, named or a YAML file (``extends:``)."""

    profile: str | None = Field(None, description="a named profile of `mmload sim --profile`")
    profile_file: str | None = Field(
        None, min_length=1, description="a profile YAML file (relative to the campaign file)"
    )

    @field_validator("profile")
    @classmethod
    def _named(cls, value: str | None) -> str | None:
        if value is not None and value not in NAMED_PROFILES:
            raise ValueError(f"unknown profile {value!r} (known: {', '.join(NAMED_PROFILES)})")
        return value

    @model_validator(mode="after")
    def _one(self) -> SimVersion:
        if (self.profile is None) == (self.profile_file is None):
            raise ValueError("give profile or profile_file (one of them)")
        return self


class SimSize(StrictModel):
    """A simulator's "architecture": its population and its worker pool (the capacity)."""

    users: Count(1, 1_000_000) = Field(1000, description="the seeded population")
    pool_size: Count(1, 100_000) | None = Field(
        None, description="worker_pool.size: requests served at once (default: the profile's)"
    )
    service_ms: Number(0, 60_000, lo_open=True) | None = Field(
        None, description="worker_pool.service_ms (default: the profile's)"
    )
    queue_max: Count(0, 100_000_000) | None = Field(None, description="worker_pool.queue_max")


class CampaignVersion(StrictModel):
    """One version under test: a label (as the runs carry it) and the server to install (a
    Mattermost release), or for the simulator its profile."""

    label: str = Field(pattern=LABEL_RE, description="e.g. esr-11.7: the runs' --label")
    mattermost: MattermostSettings | None = None
    sim: SimVersion | None = None

    @model_validator(mode="after")
    def _verified(self) -> CampaignVersion:
        if (self.mattermost is None) == (self.sim is None):
            raise ValueError("give mattermost: (a release to install) or sim: (a profile)")
        m = self.mattermost
        if m is None:
            return self
        if "version" not in m.model_fields_set:
            raise ValueError("mattermost.version is required: the version under test")
        if m.sha256 is None and m.tarball_file is None:
            raise ValueError("mattermost.sha256 is required: a campaign installs verified tarballs")
        return self


class CampaignArchitecture(StrictModel):
    """A catalog tier, or explicit sizes: a tier with overrides (then a name is required)."""

    name: str | None = Field(None, pattern=LABEL_RE, description="default: tier-<users>")
    tier: Count(1, MAX_USERS) | None = None
    overrides: Overrides = Field(default_factory=Overrides)
    sim: SimSize | None = Field(None, description="a simulator size instead of a tier")

    @field_validator("tier")
    @classmethod
    def _published_tier(cls, value: int | None) -> int | None:
        return None if value is None else Deployment._published_tier.__func__(cls, value)

    @model_validator(mode="after")
    def _named(self) -> CampaignArchitecture:
        if self.sim is not None:
            if self.tier is not None or self.overrides != Overrides():
                raise ValueError("sim: a simulator size has no tier or overrides")
            if self.name is None:
                raise ValueError("name: required for a simulator size")
            return self
        if self.tier is None:
            raise ValueError("tier: required (or sim: a simulator size)")
        if self.name is None and self.overrides != Overrides():
            raise ValueError("name: required when overrides change the tier's sizes")
        return self

    @property
    def label(self) -> str:
        """The architecture name the runs carry (`--architecture`)."""
        return self.name or f"tier-{self.tier}"


class CampaignScenario(StrictModel):
    """A ceiling test, or a bounded comparison run at fixed users."""

    scenario: str = Field("ceiling", min_length=1, description="built-in name or a YAML path")
    users: Count(1, MAX_USERS) | None = Field(None, description="comparison runs: fixed users")
    duration_s: Number(0, MAX_RUN_S, lo_open=True) | None = Field(
        None, description="the whole run (a ceiling: its time limit); default: the scenario's"
    )


class CampaignTimings(StrictModel):
    """Estimates of the steps around the runs, for the plan's wall time and cost."""

    deploy_s: Number(0, DAY_S) = Field(3600.0, description="mmload up: provision to seed")
    upgrade_s: Number(0, DAY_S) = Field(900.0, description="in-place upgrade + database reset")
    between_runs_s: Number(0, DAY_S) = Field(300.0, description="reset between two runs")
    destroy_s: Number(0, DAY_S) = Field(900.0, description="mmload down")


class Campaign(StrictModel):
    """A campaign file: versions x architectures x repeats x scenarios, under a budget."""

    name: str = Field(pattern=NAME_RE, description="prefix of its deployments")
    versions: list[CampaignVersion] = Field(min_length=1, max_length=20)
    architectures: list[CampaignArchitecture] = Field(min_length=1, max_length=50)
    scenarios: list[CampaignScenario] = Field(
        default_factory=lambda: [CampaignScenario()], min_length=1, max_length=10
    )
    repeats: Count(1, 20) = 3
    concurrency: Count(1, 20) = Field(1, description="deployments at once (K)")
    reuse_deployments: bool = Field(
        True, description="one deployment per architecture, upgraded in place across versions"
    )
    budget_usd: Number(0, MAX_BUDGET_USD, lo_open=True) = Field(
        ..., description="the cap: a plan costing more is refused"
    )
    timings: CampaignTimings = Field(default_factory=CampaignTimings)
    output_dir: str | None = Field(
        None,
        min_length=1,
        description="where `campaign run` writes its state and records (relative to the "
        "campaign file; default: <name>-campaign beside it)",
    )

    @property
    def simulated(self) -> bool:
        """True when the versions are simulator profiles and the architectures its sizes."""
        return self.versions[0].sim is not None

    @field_validator("versions", "architectures")
    @classmethod
    def _unique(cls, items: list[Any]) -> list[Any]:
        names = [item.label for item in items]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ValueError(f"[{i}] {name!r} is listed twice")
        return items
