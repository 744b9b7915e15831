"""Scenario and run models: the only home of the load engine's defaults.

A scenario is a YAML file in ``scenarios/`` (or any path). Its ``kind`` decides how users arrive:

- ``storm``: ``users`` arrive over ``arrival_s`` (open model; uniformly, or by the curve of
  ``arrivals:``, :mod:`mmload.config.arrivals`), then everyone stays connected for ``hold_s``.
- ``herd``: ``users`` arrive over ``arrival_s``, settle, then an outage of ``herd.outage_s``
  ends and every client reconnects at the time the web client's backoff rule gives it.
- ``steady``: ``users`` arrive over ``arrival_s`` and run the action mix for ``hold_s`` (the
  "bounded" comparison run).
- ``ceiling``: a feedback loop adds users while every SLO holds and removes some when one breaks,
  until the user count is stable; the result is the supported users.

``--scale F`` multiplies users and every duration by F (0.1 -> 1,500 users in 90 s).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator

from mmload.config.actions import load_table
from mmload.config.arrivals import Arrivals, UniformCurve, with_curve_totals
from mmload.config.base import StrictModel
from mmload.config.bounds import DAY_S, MAX_RATE, MAX_RUN_S, MAX_USERS, MIN_RATE, Count, Number
from mmload.config.credentials import Accounts, AccountsSummary
from mmload.config.curves import with_replay_read
from mmload.config.loader import field_path, load_model
from mmload.config.sim import DEFAULT_PASSWORD
from mmload.errors import UserError
from mmload.resources import resource_dir

SCENARIO_DIR = resource_dir("scenarios")

Kind = Literal["storm", "herd", "steady", "ceiling"]
HOUR_MS = 3_600_000
MAX_MS = 3_600_000.0  # an SLO threshold of an hour is already meaningless
MIN_BACKOFF_S = 0.1  # the web client never retries faster; smaller values spin


class Population(StrictModel):
    """Who logs in: user i (1-based) is ``username_pattern.format(i=i)`` with ``password`` —
    or, with ``accounts`` (``run --credentials``), credential ``i % size`` of the customer's
    file (``mmload.config.credentials``; its summary is what the plan and record see)."""

    username_pattern: str = "user-{i}"
    password: str = Field(DEFAULT_PASSWORD, repr=False)
    first_user: Count(1, 1_000_000_000) = 1
    size: Count(1, 100_000_000) = Field(
        20_000, description="users that exist on the server; indexes wrap"
    )
    accounts: Accounts | None = Field(None, repr=False, description="set by --credentials only")
    accounts_summary: AccountsSummary | None = None

    @model_validator(mode="after")
    def _pattern_has_i(self) -> Population:
        if "{i}" not in self.username_pattern:
            raise ValueError("username_pattern must contain {i}")
        try:  # the pattern is used mid-run: format samples now, so it cannot fail then
            names = {
                self.username_pattern.format(i=i) for i in (self.first_user, self.first_user + 1)
            }
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
            raise ValueError(
                f"username_pattern cannot be formatted with i=1: {type(exc).__name__}: {exc}"
            ) from None
        if len(names) != 2:
            raise ValueError("username_pattern must give each user its own name")
        return self


class Idle(StrictModel):
    """Idle time between two actions, drawn uniformly from [min_ms, 2*avg_ms - min_ms).

    The rule and defaults of mattermost-load-test-ng's simulcontroller (expected value avg_ms).
    """

    min_ms: Count(0, HOUR_MS) = 1000
    avg_ms: Count(1, HOUR_MS) = 20_000

    @model_validator(mode="after")
    def _avg_above_min(self) -> Idle:
        if self.avg_ms <= self.min_ms:
            raise ValueError("avg_ms must be greater than min_ms")
        return self


class WebSocketSpec(StrictModel):
    """The web client's WebSocket behaviour (mattermost-facts.md)."""

    enabled: bool = True
    ping_interval_s: Number(0.1, 3600) = 30.0
    reconnect_min_s: Number(MIN_BACKOFF_S, 3600) = 3.0
    reconnect_max_s: Number(MIN_BACKOFF_S, DAY_S) = 300.0
    reconnect_jitter_s: Number(0, 3600) = 2.0
    reconnect_backoff_after: Count(0, 1000) = Field(
        7, description="failures before growing the delay"
    )
    auth: Literal["cookie", "challenge", "header"] | None = Field(
        None,
        description="cookie (session cookie on the upgrade), challenge (authentication_challenge)"
        " or header (Authorization on the upgrade); null: the client profile's"
        " (webapp-11: cookie, webapp-legacy: challenge)",
    )


SERVER_SIDE_SLOS = ("http_5xx_rate", "cpu_percent")  # measured through --prometheus only
AT_LEAST_SLOS = ("login_success_rate",)  # passes when the value is >= the threshold


class SLOs(StrictModel):
    """Service-level objectives; a null threshold is not checked.

    Defaults are the thresholds Mattermost's load-test coordinator uses (p99, average, 5xx, CPU);
    the others are off unless a scenario sets them (docs/scenarios.md gives each one's source).
    A threshold may also be written ``{threshold: X, optional: true}``: an optional SLO that
    cannot be measured does not fail the run (every other unmeasured SLO does).
    """

    login_p99_ms: Number(0, MAX_MS, lo_open=True) | None = Field(
        None, description="p99 of the successful logins (ms)"
    )
    login_success_rate: Number(0, 1) | None = Field(
        None, description="logins answered 200 / logins sent (at least)"
    )
    time_to_loaded_p99_ms: Number(0, MAX_MS, lo_open=True) | None = Field(
        None, description="p99 of scheduled arrival -> web app loaded (ms)"
    )
    p99_ms: Number(0, MAX_MS, lo_open=True) | None = 2000.0
    avg_ms: Number(0, MAX_MS, lo_open=True) | None = 100.0
    error_rate: Number(0, 1) | None = Field(None, description="failed / all requests")
    auth_error_rate: Number(0, 1) | None = Field(None, description="401/403 / all requests")
    rate_limited_rate: Number(0, 1) | None = Field(None, description="429 / all requests")
    server_error_rate: Number(0, 1) | None = Field(
        None, description="5xx answered to the client / all requests"
    )
    transport_error_rate: Number(0, 1) | None = Field(
        None, description="no answer (refused, reset, timeout) / all requests"
    )
    http_5xx_rate: Number(0, 1) | None = Field(0.00025, description="server-side, PromQL")
    cpu_percent: Number(0, 100_000, lo_open=True) | None = Field(
        85.0, description="server-side app CPU, PromQL"
    )
    exclude: list[str] = Field(
        default_factory=lambda: ["WS ping"],
        description="request names left out of the client-side latency SLOs",
    )
    optional: list[str] = Field(
        default_factory=lambda: list(SERVER_SIDE_SLOS),
        description="SLOs whose being unmeasured does not fail the run (default: the "
        "server-side ones, which need --prometheus)",
    )

    @model_validator(mode="before")
    @classmethod
    def _threshold_mappings(cls, data: object) -> object:
        """``name: {threshold: X, optional: true}`` -> ``name: X`` and ``name`` in optional."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        given = data.get("optional", list(SERVER_SIDE_SLOS))
        optional = list(given) if isinstance(given, list) else given
        for name, value in list(data.items()):
            if name in ("exclude", "optional") or not isinstance(value, dict):
                continue
            unknown = set(value) - {"threshold", "optional"}
            if unknown:
                raise ValueError(
                    f"{name}: unknown key {sorted(unknown)[0]!r} (threshold, optional)"
                )
            data[name] = value.get("threshold")
            if value.get("optional") is True and isinstance(optional, list):
                optional.append(name)
            elif value.get("optional") not in (None, False):
                raise ValueError(f"{name}.optional must be true or false")
        data["optional"] = optional
        return data

    @field_validator("optional")
    @classmethod
    def _known_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in cls.model_fields or name in ("exclude", "optional"):
                raise ValueError(f"optional names an unknown SLO {name!r}")
        return names

    def thresholds(self) -> dict[str, float]:
        """The SLOs to check: name -> threshold (the ones not null)."""
        return {
            name: value
            for name in type(self).model_fields
            if name not in ("exclude", "optional") and (value := getattr(self, name)) is not None
        }


class PromQueries(StrictModel):
    """PromQL used for server-side SLOs; ``{window}`` is replaced by the interval, e.g. ``30s``."""

    http_5xx_rate: str = (
        '(sum(rate(mattermost_api_time_count{{status_code=~"5.."}}[{window}])) or vector(0))'
        " / sum(rate(mattermost_api_time_count[{window}]))"
    )
    # The app nodes' CPU, as Mattermost's load-test coordinator measures it: node_exporter's
    # idle time per app node (job node-app in the metrics role's prometheus.yml), busy share of
    # all its CPUs in percent, averaged over the nodes. Not process_cpu_seconds_total: that is
    # one process's use in cores (100 = one core) and matches Prometheus's own process too.
    cpu_percent: str = (
        "avg(100 * (1 - avg by (instance) "
        '(rate(node_cpu_seconds_total{{job="node-app",mode="idle"}}[{window}]))))'
    )


ABORT_RATES = (
    "error_rate",
    "auth_error_rate",
    "rate_limited_rate",
    "server_error_rate",
    "transport_error_rate",
    "http_5xx_rate",
)
ABORT_MS = ("p99_ms", "avg_ms", "login_p99_ms")
AbortMetric = Literal[
    "error_rate",
    "auth_error_rate",
    "rate_limited_rate",
    "server_error_rate",
    "transport_error_rate",
    "http_5xx_rate",
    "p99_ms",
    "avg_ms",
    "login_p99_ms",
]
MAX_ABORT_RULES = 20
MAX_ABORT_WINDOW_S = 590  # the live statistics keep the last 600 s


class AbortRule(StrictModel):
    """Stop the run when ``metric`` over the last ``window_s`` seconds (ending 2 s ago; 10 s is
    the live view's window) stays above ``above`` for ``for_s`` seconds. Rates are 0..1,
    latencies in ms."""

    metric: AbortMetric
    above: Number(0, MAX_MS)
    for_s: Number(0, DAY_S) = Field(30.0, description="how long the breach must hold")
    window_s: Count(1, MAX_ABORT_WINDOW_S) = Field(
        10, description="whole seconds the metric is measured over (the live view's: 10)"
    )

    @model_validator(mode="after")
    def _rate_within_one(self) -> AbortRule:
        if self.metric in ABORT_RATES and self.above >= 1:
            raise ValueError(f"above: {self.metric} is a rate: give a value below 1")
        return self

    @property
    def name(self) -> str:
        """The rule in words: ``error_rate above 0.2 for 30 s``."""
        window = "" if self.window_s == 10 else f" (window {self.window_s} s)"
        return f"{self.metric} above {self.above:g} for {self.for_s:g} s{window}"


class Ceiling(StrictModel):
    """The feedback loop of the ceiling scenario (like Mattermost's load-test coordinator)."""

    start_users: Count(1, MAX_USERS) = 50
    step_users: Count(1, MAX_USERS) = Field(
        50, description="users added after an interval where SLOs hold"
    )
    min_step_users: Count(1, MAX_USERS) = 5
    remove_fraction: Number(0.001, 0.999) = Field(
        0.1, description="share removed when an SLO breaks"
    )
    max_users: Count(1, MAX_USERS) = 20_000
    interval_s: Number(1, DAY_S) = Field(60.0, description="measurement interval per decision")
    settle_s: Number(0, DAY_S) = Field(
        10.0, description="skip this long after a change before measuring"
    )
    stable_intervals: Count(2, 1000) = Field(
        4, description="the window: intervals with a stable count"
    )
    stable_tolerance: Number(0, 10) = Field(0.1, description="max spread within the window / mean")
    spawn_rate: Number(MIN_RATE, 100_000) = Field(20.0, description="users per second when adding")
    max_duration_s: Number(1, MAX_RUN_S) = 3600.0


class Herd(StrictModel):
    """The reconnect herd: when the outage starts and how long it lasts."""

    settle_s: Number(0, DAY_S) = Field(
        30.0, description="after the last arrival, before the outage"
    )
    outage_s: Number(0, DAY_S) = 60.0


class Scenario(StrictModel):
    """One load scenario (see the module docstring for the kinds)."""

    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    description: str = ""
    kind: Kind
    users: Count(1, MAX_USERS) = 100
    arrival_s: Number(0, MAX_RUN_S) = Field(
        60.0, description="the arrival window (arrivals follow the curve of arrivals:)"
    )
    arrivals: Arrivals = Field(
        default_factory=UniformCurve,
        description="the arrival curve: uniform (default), poisson, ramp, steps, spike, replay",
    )
    hold_s: Number(0, MAX_RUN_S) = Field(60.0, description="after the last arrival")
    actions: bool = Field(True, description="run the action mix after the initial load")
    action_weights: dict[str, Number(0, 1_000_000)] = Field(
        default_factory=dict, description="override weights of mmload/config/actions.yaml by name"
    )
    only_listed_actions: bool = Field(
        False, description="use only the actions named in action_weights (others weigh 0)"
    )
    idle: Idle = Idle()
    client: Literal["webapp-11", "webapp-legacy"] = Field(
        "webapp-11",
        description="which web app the users behave like: the 11.x web app (parallel loads,"
        " WebSocket resume) or the older one (sequential per-team loads), for ESR comparisons",
    )
    http_connections: Count(1, 6) = Field(
        2,
        description="HTTP connections per user (the browser: 6 over HTTP/1.1, 1 over HTTP/2);"
        " the web app's parallel calls share them; users x (this + 1) sockets per agent and"
        " target address must stay within the ~28k ephemeral ports",
    )
    websocket: WebSocketSpec = WebSocketSpec()
    population: Population = Population()
    slos: SLOs = SLOs()
    prometheus: PromQueries = PromQueries()
    ceiling: Ceiling = Ceiling()
    herd: Herd = Herd()
    rate_cap: Number(MIN_RATE, MAX_RATE) | None = Field(
        None, description="requests per second, whole run"
    )
    abort: list[AbortRule] = Field(
        default_factory=list,
        max_length=MAX_ABORT_RULES,
        description="rules that stop the run (outcome aborted) when one holds for its for_s",
    )
    locustfile: str | None = Field(None, description="custom locustfile; relative to the scenario")
    request_timeout_s: Number(0.1, 3600) = 60.0

    @model_validator(mode="before")
    @classmethod
    def _curve_totals(cls, data: object) -> object:
        """users and arrival_s left out: the curve's own (mmload.config.arrivals)."""
        if isinstance(data, dict) and isinstance(data.get("arrivals"), dict):
            return with_curve_totals(data)
        return data

    @field_validator("action_weights")
    @classmethod
    def _known_actions(cls, weights: dict[str, float]) -> dict[str, float]:
        table = {a.name: a for a in load_table()}
        for name, weight in weights.items():
            if name not in table:
                raise ValueError(f"unknown action {name!r} (see mmload/config/actions.yaml)")
            if weight < 0:
                raise ValueError(f"weight of {name} must be >= 0")
            if weight > 0 and not table[name].handler:
                raise ValueError(f"action {name} is not implemented by mmload")
        return weights

    def scaled(self, factor: float) -> Scenario:
        """Users and every duration multiplied by ``factor`` (at least one user), validated
        again: a scaled value outside its range is an error, not a run."""
        if factor == 1:
            return self

        def more(n: int) -> int:
            return max(1, math.ceil(n * factor))

        h, c = self.herd, self.ceiling
        upd: dict = {
            "users": more(self.users),
            "arrival_s": self.arrival_s * factor,
            "hold_s": self.hold_s * factor,
            "herd": {
                **h.model_dump(),
                "settle_s": h.settle_s * factor,
                "outage_s": h.outage_s * factor,
            },
            "ceiling": {
                **c.model_dump(),
                "start_users": more(c.start_users),
                "step_users": more(c.step_users),
                "min_step_users": more(c.min_step_users),
                "max_users": more(c.max_users),
            },
        }
        if self.rate_cap:
            upd["rate_cap"] = self.rate_cap * factor
        return self.revalidated(upd, "--scale")

    def revalidated(self, update: dict, flag: str) -> Scenario:
        """This scenario with ``update`` applied and checked again; an error names ``flag``."""
        data = {**self.model_dump(), **update}
        try:
            return Scenario.model_validate(data)
        except ValidationError as err:
            e = err.errors(include_url=False)[0]
            where = field_path(tuple(e["loc"]))
            raise UserError(
                f"{where} becomes out of range: {e['msg']}", source="command line", field=flag
            ) from None


class RunOptions(StrictModel):
    """Flags of ``mmload run`` (validated like a config file; errors name the flag)."""

    target: str = Field(..., pattern=r"^https?://[^\s/]+(/.*)?$")
    scale: Number(0.001, 10) = 1.0
    users: Count(1, MAX_USERS) | None = None
    duration: Number(0, MAX_RUN_S, lo_open=True) | None = Field(
        None, description="seconds: the whole run (the hold is what the phases leave)"
    )
    hold: Number(0, MAX_RUN_S) | None = Field(None, description="seconds: overrides hold_s")
    workers: Count(0, 64) = Field(0, description="local worker processes")
    remote_workers: Count(0, 1000) = Field(0, description="`mmload worker` agents to await")
    label: str | None = Field(None, max_length=80)
    architecture: str | None = Field(None, max_length=80, description="e.g. a tier or ct2XL220")
    out: str = "runs"
    prometheus: str | None = Field(None, pattern=r"^https?://\S+$")
    rate_cap: Number(MIN_RATE, MAX_RATE) | None = Field(
        None, description="requests per second, whole run (--max-rps is the same flag)"
    )
    max_users: Count(1, MAX_USERS) | None = Field(
        None, description="hard cap on users at once, after --scale and --users"
    )
    master_bind: str = "127.0.0.1"
    master_port: Count(0, 65535) = Field(0, description="0: a free port")
    credentials: str | None = Field(None, description="the customer's users (CSV or JSONL)")
    credentials_salt_file: str | None = Field(
        None, description="salt of the record names (default: <credentials>.salt, made 0600)"
    )
    # every worker connected and ready within this (returns as soon as they are; a local worker
    # that dies fails the run at once): two workers start in ~7 s alone, several times that on a
    # busy 2-core machine, and agents started over SSH take longer still
    expect_workers_timeout_s: Number(1, DAY_S) = 120.0

    @field_validator("target")
    @classmethod
    def _normal_target(cls, target: str) -> str:
        return normalize_target(target)

    @model_validator(mode="after")
    def _duration_or_hold(self) -> RunOptions:
        if self.duration is not None and self.hold is not None:
            raise ValueError("give --duration (the whole run) or --hold, not both")
        return self


class DemoOptions(StrictModel):
    """Flags of ``mmload demo``: the Sev0 login storm, scaled down, against a local simulator."""

    scenario: str = "sev0-login-storm"
    scale: float = Field(0.1, gt=0, le=10, description="scale of the scenario")
    hold: float = Field(20.0, gt=0, description="seconds connected after the last arrival")
    out: str = RunOptions.model_fields["out"].default


def normalize_target(target: str) -> str:
    """``http(s)://host[:port][/prefix]`` without trailing slashes; a path prefix such as
    ``/mattermost`` is kept. Credentials, a query or a fragment are refused."""
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials (user:password@)")
    if parts.query or parts.fragment or target.endswith(("?", "#")):
        raise ValueError("must not have a query or fragment")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ValueError("has an invalid port") from None
    path = re.sub("/+", "/", parts.path).rstrip("/")
    if path.endswith("/api/v4"):
        raise ValueError("is the server's base URL: leave out /api/v4")
    return f"{parts.scheme}://{parts.netloc}{path}"


class WorkerOptions(StrictModel):
    """Flags of ``mmload worker`` (a load agent of a remote ``mmload run`` master)."""

    master_host: str = Field(..., min_length=1)
    master_port: int = Field(5557, ge=1, le=65535, description="Locust's default master port")
    locustfile: str | None = None
    population: str | None = Field(
        None,
        description="the population file (0600; else $MMLOAD_POPULATION_FILE, else "
        "~/.mmload/population.json)",
    )
    # This agent's own addresses its users send from, round robin by user index (the agent's
    # private IPs); empty: the master's plan decides (the system's choice).
    source_addresses: list[str] = Field(default_factory=list, max_length=256)


def resolve_scenario_path(name_or_path: str) -> Path:
    """A path as given, or the name of a built-in scenario in ``scenarios/``."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    builtin = SCENARIO_DIR / f"{name_or_path}.yaml"
    if builtin.exists():
        return builtin
    known = ", ".join(sorted(q.stem for q in SCENARIO_DIR.glob("*.yaml"))) or "none"
    raise UserError(
        f"no such scenario file or built-in scenario (built-in: {known})", source=name_or_path
    )


def load_scenario(name_or_path: str) -> tuple[Scenario, Path]:
    """Load and validate a scenario; a custom locustfile must exist (relative to the scenario)."""
    path = resolve_scenario_path(name_or_path)
    scenario = load_model(Scenario, path)
    if scenario.locustfile:
        lf = (path.parent / scenario.locustfile).resolve()
        if not lf.is_file():
            raise UserError("locustfile not found", source=str(path), field="locustfile")
        scenario = scenario.model_copy(update={"locustfile": str(lf)})
    return with_replay_read(scenario, path), path


def apply_options(scenario: Scenario, opts: RunOptions) -> Scenario:
    """The scenario as this run uses it: scaled, then explicit --users/--hold/--rate-cap (and a
    ceiling's --duration; other kinds turn --duration into a hold in ``mmload.load.phases``),
    then the --max-users cap on the users (a ceiling: on its max_users and start_users)."""
    s = scenario.scaled(opts.scale)
    upd: dict = {}
    ceiling = s.ceiling.model_dump()
    if opts.users is not None:
        upd["users"] = opts.users
        if s.kind == "ceiling":
            upd["ceiling"] = ceiling = {**ceiling, "max_users": opts.users}
    if opts.hold is not None:
        upd["hold_s"] = opts.hold
    if opts.duration is not None and s.kind == "ceiling":
        upd["ceiling"] = {**ceiling, "max_duration_s": opts.duration}
    if opts.rate_cap is not None:
        upd["rate_cap"] = opts.rate_cap
    if upd:
        s = s.revalidated(upd, "--users/--duration/--rate-cap")
    return capped(s, opts.max_users)


def capped(scenario: Scenario, max_users: int | None) -> Scenario:
    """``scenario`` with never more than ``max_users`` users at once (None: as it is)."""
    if max_users is None:
        return scenario
    c = scenario.ceiling
    ceiling = {
        **c.model_dump(),
        "max_users": min(c.max_users, max_users),
        "start_users": min(c.start_users, max_users),
    }
    upd = {"users": min(scenario.users, max_users), "ceiling": ceiling}
    return scenario.revalidated(upd, "--max-users")
