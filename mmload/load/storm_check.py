"""The findings of `mmload target check`: the target's answers against the storm it will get.

A *blocking* finding is one that would make the storm measure something other than the server
(a rate limiter, expiring sessions, a certificate the users refuse); `target check` exits 1 on
any. The rest are notes. Facts behind the rules: ``../shared/mattermost-facts.md`` (login rate
limiter: 5/s, burst 10, keyed by the peer address only, per node, since 11.5.0 and 11.4.1,
11.3.2, 11.2.4, 10.11.12; the global limiter keyed by ``TrustedProxyIPHeader`` or the peer).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from mmload.config.scenario import Scenario
from mmload.load.schedule import arrival_schedule
from mmload.load.target import TargetFacts

LOGIN_PER_SEC = 5  # RateLimitedHandler(…, RateLimitSettings{PerSec: 5, MaxBurst: 10})
LOGIN_BURST = 10
FIRST_WITH_LOGIN_LIMITER = {(11, 4): 1, (11, 3): 2, (11, 2): 4, (10, 11): 12}  # backports
PEAK_WINDOW_S = 10.0


@dataclass(frozen=True)
class Finding:
    """One line of the check; ``blocking`` ones fail it (exit 1)."""

    blocking: bool
    text: str


@dataclass(frozen=True)
class Storm:
    """What the scenario asks of the server: logins, over how long, at what peak rate."""

    name: str
    users: int
    arrival_s: float
    peak_per_s: float
    run_s: float


def storm_of(scenario: Scenario) -> Storm:
    """The scenario's logins and their peak rate over any 10 s window of its arrival curve."""
    schedule = arrival_schedule(scenario)
    users, spread = schedule.users, schedule.duration_s
    if spread <= PEAK_WINDOW_S:
        peak = users / max(spread, 1.0)
    else:
        steps = range(math.ceil(spread - PEAK_WINDOW_S) + 1)
        most = max(schedule.due(t + PEAK_WINDOW_S) - schedule.due(t) for t in steps)
        peak = most / PEAK_WINDOW_S
    run_s = spread + scenario.hold_s
    return Storm(scenario.name, users, spread, peak, run_s)


def duration(seconds: float) -> str:
    """``900`` -> ``15 min``, ``90`` -> ``90 s``, ``7200`` -> ``2 h``."""
    if seconds >= 7200 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def version_tuple(version: str | None) -> tuple[int, int, int] | None:
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)", version or "")
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def has_login_limiter(version: str | None) -> bool:
    """Whether a server of ``version`` rate-limits /login when RateLimitSettings.Enable is on
    (unknown versions: assumed yes)."""
    v = version_tuple(version)
    if v is None:
        return True
    if v >= (11, 5, 0):
        return True
    first = FIRST_WITH_LOGIN_LIMITER.get(v[:2])
    return first is not None and v[2] >= first


def sources_needed(rate_per_s: float, per_source: float) -> int:
    return max(1, math.ceil(rate_per_s / per_source - 1e-9))


def login_limiter(storm: Storm) -> Finding:
    need = sources_needed(storm.peak_per_s, LOGIN_PER_SEC)
    return Finding(
        need > 1,
        f"login rate limiter on, keyed by remote address: {LOGIN_PER_SEC} logins/s per source "
        f"IP (burst {LOGIN_BURST}, per app node) — a storm of {storm.users:,} logins in "
        f"{duration(storm.arrival_s)} ({storm.peak_per_s:.1f}/s at its peak) needs ≥ {need} "
        f"source address{'es' if need > 1 else ''} (`mmload run --source-address`, repeated); "
        "behind a proxy or load balancer the server sees the proxy's address instead, and the "
        f"whole storm is capped near {LOGIN_PER_SEC} logins/s per app node",
    )


def global_limiter(rl: dict[str, Any], trusted: list[str], storm: Storm) -> Finding:
    per_sec, burst = rl.get("PerSec"), rl.get("MaxBurst")
    header = rl.get("VaryByHeader") or ""
    by_header = f" and the {header} header" if header else ""
    if rl.get("VaryByUser"):
        return Finding(
            False,
            f"global rate limiter on, keyed by session{by_header}: {per_sec} requests/s per "
            f"user (burst {burst})",
        )
    if rl.get("VaryByRemoteAddr"):
        where = f"the first of {', '.join(trusted)}, else the peer" if trusted else "the peer"
        need = sources_needed(storm.peak_per_s, LOGIN_PER_SEC)
        return Finding(
            True,
            f"global rate limiter on, keyed by client address ({where}){by_header}: "
            f"{per_sec} requests/s per address (burst {burst}) for every request — the storm's "
            f"whole request rate (logins, initial loads, actions, WebSockets) must stay under "
            f"{per_sec}/s x source addresses ({_times(per_sec, need)}/s with {need})",
        )
    return Finding(
        True,
        f"global rate limiter on, one bucket for every client{by_header}: {per_sec} requests/s "
        f"(burst {burst}) for the whole server",
    )


def _times(per_sec: Any, n: int) -> str:
    return f"{per_sec * n:g}" if isinstance(per_sec, int | float) else "?"


def settings_findings(cfg: dict[str, Any], facts: TargetFacts, storm: Storm) -> list[Finding]:
    """Findings from ``GET /api/v4/config``."""
    out: list[Finding] = []
    rl = cfg.get("RateLimitSettings") or {}
    svc = cfg.get("ServiceSettings") or {}
    trusted = svc.get("TrustedProxyIPHeader") or []
    if rl.get("Enable"):
        if has_login_limiter(facts.version):
            out.append(login_limiter(storm))
        out.append(global_limiter(rl, trusted, storm))
    else:
        out.append(Finding(False, "rate limiting off (RateLimitSettings.Enable false)"))
    if trusted:
        out.append(Finding(False, f"TrustedProxyIPHeader: {', '.join(trusted)}"))
    hours = svc.get("SessionLengthWebInHours")
    if isinstance(hours, int | float) and hours * 3600 < storm.run_s:
        out.append(
            Finding(
                True,
                f"web sessions last {hours:g} h (SessionLengthWebInHours) but the run lasts "
                f"{duration(storm.run_s)}: users are logged out during it",
            )
        )
    elif hours is not None:
        lengths = ", ".join(
            f"{k.removeprefix('SessionLength').removesuffix('InHours')} {svc[k]} h"
            for k in (
                "SessionLengthWebInHours",
                "SessionLengthMobileInHours",
                "SessionLengthSSOInHours",
            )
            if k in svc
        )
        out.append(Finding(False, f"session lengths: {lengths}"))
    team = (cfg.get("TeamSettings") or {}).get("MaxUsersPerTeam")
    if team is not None:
        out.append(Finding(False, f"MaxUsersPerTeam {team}: each team of the population must fit"))
    conns = (cfg.get("SqlSettings") or {}).get("MaxOpenConns")
    if conns is not None:
        out.append(Finding(False, f"SqlSettings.MaxOpenConns {conns} per app node"))
    out.append(cluster_finding(cfg, facts))
    return out


def cluster_finding(cfg: dict[str, Any], facts: TargetFacts) -> Finding:
    enabled = (cfg.get("ClusterSettings") or {}).get("Enable")
    nodes = len(facts.cluster) if facts.cluster else 0
    if not enabled:
        return Finding(False, "cluster: off (one app node)")
    return Finding(False, f"cluster: on, {nodes or 'unknown number of'} node(s) in cluster/status")


def public_findings(facts: TargetFacts, storm: Storm) -> list[Finding]:
    """Findings without the admin token: TLS, and rate limiting seen in the headers."""
    out: list[Finding] = []
    if not facts.tls_verified:
        out.append(
            Finding(
                True,
                f"TLS {facts.tls}: every user of the run verifies it and would fail "
                "(give the CA in $MMLOAD_CA_FILE)",
            )
        )
    if facts.config is None and facts.rate_limit_headers:
        limit = facts.rate_limit_headers.get("x-ratelimit-limit", "?")
        out.append(
            Finding(
                True,
                f"rate limiting is on (the ping answered X-RateLimit-Limit {limit})"
                + (f"; {login_limiter(storm).text}" if has_login_limiter(facts.version) else ""),
            )
        )
    return out


def findings(facts: TargetFacts, storm: Storm) -> list[Finding]:
    """Every finding, blocking or not."""
    out = public_findings(facts, storm)
    if facts.config is not None:
        out += settings_findings(facts.config, facts, storm)
    elif facts.config_note:
        out.append(Finding(False, facts.config_note))
    return out
