"""The plan of a campaign: its deployments and runs, the expected wall time and the cost.

Nothing is applied and nothing is asked of AWS: the sizes are resolved as `mmload up` would
(`provision/sizing.py`, the catalog and the overrides, with the load test's agents,
coordinator, metrics node and NAT gateway) and priced from the shipped price table.

A deployment lives ``deploy_s``, then runs its versions one after the other (``upgrade_s``
before each version after the first when deployments are reused; otherwise one deployment per
architecture and version), each version's scenarios x repeats with ``between_runs_s`` between
two runs, then ``destroy_s``. Up to ``concurrency`` deployments exist at once: in the file's
order, each starts when a slot frees. Cost: each deployment's $/h x its lifetime.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmload.campaign.render import render
from mmload.campaign.simtarget import check_kinds, sim_profile
from mmload.config.campaign import Campaign, CampaignArchitecture, CampaignVersion
from mmload.config.catalog import load_prices
from mmload.config.deployment import Deployment
from mmload.config.loader import load_model, validate_model
from mmload.config.scenario import Scenario, load_scenario
from mmload.config.sim import Profile
from mmload.errors import UserError
from mmload.load.phases import expected_s
from mmload.provision.init_file import PLACEHOLDER_CIDR
from mmload.provision.sizing import cost_lines, hourly_total, resolve, unpriced

SCHEMA = "mmload.campaign-plan/1"


@dataclass(frozen=True)
class Test:
    """One entry of ``scenarios``, resolved: what runs and for how long."""

    name: str
    kind: str  # "ceiling" or "comparison"
    users: int | None
    duration_s: float
    index: int = 0  # its place in ``scenarios``
    ref: str = ""  # what `mmload run` is given: a built-in name or the YAML file's path
    duration_given: float | None = None  # ``duration_s`` of the entry (the run's --duration)

    @property
    def title(self) -> str:
        """E.g. ``ceiling`` or ``steady, comparison at 10,000 users``."""
        if self.kind == "ceiling":
            return f"{self.name} (ceiling)"
        return f"{self.name} (comparison at {self.users:,} users)"


@dataclass(frozen=True)
class Run:
    """One run of the plan."""

    deployment: str
    architecture: str
    version: str
    test: Test
    repeat: int


@dataclass
class PlannedDeployment:
    """A deployment, its runs, its price and when it exists."""

    name: str
    architecture: CampaignArchitecture
    versions: list[str]
    usd_per_hour: float
    unpriced: list[str]
    lifetime_s: float = 0.0
    start_s: float = 0.0
    runs: list[Run] = field(default_factory=list)

    @property
    def end_s(self) -> float:
        """When it is destroyed, from the campaign's start."""
        return self.start_s + self.lifetime_s

    @property
    def cost_usd(self) -> float:
        """Its $/h over its lifetime."""
        return self.usd_per_hour * self.lifetime_s / 3600


@dataclass
class Plan:
    """The whole plan and its verdict against the budget."""

    campaign: Campaign
    source: str
    tests: list[Test]
    deployments: list[PlannedDeployment]
    region: str
    as_of: str
    profiles: dict[tuple[str, str], Profile] = field(default_factory=dict)  # simulator only
    base: Path = Path()  # the campaign file's folder

    @property
    def output_dir(self) -> Path:
        """Where `campaign run` keeps its state and records."""
        out = Path(self.campaign.output_dir or f"{self.campaign.name}-campaign").expanduser()
        return out if out.is_absolute() else self.base / out

    @property
    def runs(self) -> list[Run]:
        """Every run, deployment by deployment."""
        return [r for d in self.deployments for r in d.runs]

    @property
    def wall_s(self) -> float:
        """From the first deployment's start to the last one's end."""
        return max((d.end_s for d in self.deployments), default=0.0)

    @property
    def cost_usd(self) -> float:
        """Every deployment's cost."""
        return sum(d.cost_usd for d in self.deployments)

    @property
    def within_budget(self) -> bool:
        """True when the cost does not exceed the cap."""
        return self.cost_usd <= self.campaign.budget_usd

    def markdown(self) -> str:
        """The plan for a reader."""
        return render("plan.md.j2", plan=self, hours=hours)

    def document(self) -> dict[str, Any]:
        """The plan as JSON."""
        return {
            "schema": SCHEMA,
            "campaign": self.campaign.name,
            "source": self.source,
            "deployments": [
                {
                    "name": d.name,
                    "architecture": d.architecture.label,
                    "tier": d.architecture.tier,
                    "versions": d.versions,
                    "runs": len(d.runs),
                    "usd_per_hour": d.usd_per_hour,
                    "unpriced": d.unpriced,
                    "start_s": d.start_s,
                    "end_s": d.end_s,
                    "lifetime_s": d.lifetime_s,
                    "cost_usd": d.cost_usd,
                }
                for d in self.deployments
            ],
            "runs": [
                {
                    "deployment": r.deployment,
                    "architecture": r.architecture,
                    "version": r.version,
                    "scenario": r.test.name,
                    "kind": r.test.kind,
                    "users": r.test.users,
                    "repeat": r.repeat,
                    "duration_s": r.test.duration_s,
                }
                for r in self.runs
            ],
            "wall_s": self.wall_s,
            "cost_usd": self.cost_usd,
            "budget_usd": self.campaign.budget_usd,
            "within_budget": self.within_budget,
            "prices": {"region": self.region, "as_of": self.as_of},
        }


def load_campaign(path: Path) -> Campaign:
    """The campaign file, validated (bad input: one line naming file and field path)."""
    return load_model(Campaign, path)


def resolve_test(entry_index: int, campaign: Campaign, base: Path, source: str) -> Test:
    """A ``scenarios[i]`` entry with its scenario file loaded and its duration."""
    entry = campaign.scenarios[entry_index]
    where = f"scenarios[{entry_index}]"
    ref = Path(entry.scenario)
    if ref.suffix in (".yaml", ".yml") and not ref.is_absolute():
        ref = base / ref
    try:
        scenario, _ = load_scenario(str(ref))
    except UserError as exc:
        raise UserError(str(exc), source=source, field=f"{where}.scenario") from None
    extra = (entry_index, str(ref), entry.duration_s)
    if scenario.kind == "ceiling":
        if entry.users is not None:
            raise UserError(
                "a ceiling finds its users; users is for a comparison run at fixed users",
                source=source,
                field=f"{where}.users",
            )
        duration = entry.duration_s or expected_s(scenario)
        return Test(scenario.name, "ceiling", None, duration, *extra)
    users = entry.users or scenario.users
    sized: Scenario = scenario.model_copy(update={"users": users})
    return Test(scenario.name, "comparison", users, entry.duration_s or expected_s(sized), *extra)


def deployment_of(
    source: str, index: int, arch: CampaignArchitecture, version: CampaignVersion, name: str
) -> tuple[float, list[str]]:
    """$/h of the deployment `mmload up` would build (and the types the table cannot price);
    a simulator costs nothing."""
    if arch.sim is not None:
        return 0.0, []
    data = {
        "name": name,
        "tier": arch.tier,
        "operator_cidrs": [PLACEHOLDER_CIDR],
        "overrides": arch.overrides.model_dump(exclude_none=True),
        "mattermost": version.mattermost.model_dump(exclude_none=True),
    }
    try:
        dep = validate_model(Deployment, data, source)
    except UserError as exc:
        raise UserError(exc.message, source=source, field=f"architectures[{index}]") from None
    lines = cost_lines(resolve(dep), dep.database.engine, load_prices())
    return hourly_total(lines), unpriced(lines)


def deployment_names(campaign: Campaign, source: str) -> list[tuple[int, list[int], str]]:
    """(architecture index, version indexes, deployment name) for each deployment."""
    out = []
    for a in range(len(campaign.architectures)):
        if campaign.reuse_deployments:
            out.append((a, list(range(len(campaign.versions))), f"{campaign.name}-a{a + 1}"))
        else:
            for v in range(len(campaign.versions)):
                out.append((a, [v], f"{campaign.name}-a{a + 1}v{v + 1}"))
    longest = max(len(name) for _, _, name in out)
    if longest > 25:
        raise UserError(
            f"too long for its deployments' names ({longest} > 25 characters, e.g. "
            f"{out[-1][2]}): shorten it",
            source=source,
            field="name",
        )
    return out


def build_plan(path: Path) -> Plan:
    """Read the campaign file and plan it."""
    source = str(path)
    campaign = load_campaign(path)
    check_kinds(campaign, source)
    profiles = sim_profiles(campaign, path.parent, source) if campaign.simulated else {}
    tests = [resolve_test(i, campaign, path.parent, source) for i in range(len(campaign.scenarios))]
    deployments = [
        plan_deployment(campaign, tests, source, a, versions, name)
        for a, versions, name in deployment_names(campaign, source)
    ]
    schedule(deployments, campaign.concurrency)
    prices = load_prices()
    return Plan(
        campaign, source, tests, deployments, prices.region, prices.as_of, profiles, path.parent
    )


def sim_profiles(campaign: Campaign, base: Path, source: str) -> dict[tuple[str, str], Profile]:
    """(architecture, version) -> the simulator profile that run uses, each validated."""
    return {
        (arch.label, version.label): sim_profile(campaign, v, a, base, source)
        for a, arch in enumerate(campaign.architectures)
        for v, version in enumerate(campaign.versions)
    }


def plan_deployment(
    campaign: Campaign, tests: list[Test], source: str, a: int, versions: list[int], name: str
) -> PlannedDeployment:
    """One deployment: its price, its runs (version, scenario, repeat) and its lifetime."""
    arch, labels = campaign.architectures[a], [campaign.versions[v].label for v in versions]
    usd, missing = deployment_of(source, a, arch, campaign.versions[versions[0]], name)
    d = PlannedDeployment(name, arch, labels, usd, missing)
    d.runs = [
        Run(name, arch.label, label, test, rep)
        for label in labels
        for test in tests
        for rep in range(1, campaign.repeats + 1)
    ]
    t = campaign.timings
    d.lifetime_s = (
        t.deploy_s
        + t.upgrade_s * (len(labels) - 1)
        + sum(r.test.duration_s for r in d.runs)
        + t.between_runs_s * max(0, len(d.runs) - 1)
        + t.destroy_s
    )
    return d


def schedule(deployments: list[PlannedDeployment], slots: int) -> None:
    """Start each deployment, in order, when one of ``slots`` frees (in place)."""
    free = [0.0] * slots
    heapq.heapify(free)
    for d in deployments:
        d.start_s = heapq.heappop(free)
        heapq.heappush(free, d.end_s)


def hours(seconds: float) -> str:
    """Seconds as hours with two decimals: 7200 -> 2.00."""
    return f"{seconds / 3600:,.2f}"
