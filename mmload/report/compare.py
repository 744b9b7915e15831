"""Compare two sides (one run, or several repeats of one build and architecture each).

Per endpoint (and per store method for ltng data), avg and p99: base, new, delta, delta %, with
the semantics of ``ltctl report compare``: a change is shown in the worsened or improved table,
sorted by delta %, unless it is under 1 % or under 2 ms. Unlike ltctl we do not round the values
to whole milliseconds before taking the difference, and a name present on one side only is
listed as such (ltctl counts it as 0 s, i.e. a -100 % "improvement").

Supported users: mean of each side, delta, delta % and the spread of the repeats; the verdict
uses Mattermost's ±5 % noise band and, with at least two repeats per side, Welch's t-test.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mmload import hdr
from mmload.config.report import ReportOptions
from mmload.report.model import RunSummary

ROW_COLUMNS = [
    "kind",
    "name",
    "stat",
    "base",
    "new",
    "delta",
    "delta_pct",
    "change",
    "base_count",
    "new_count",
]
STATS = ("avg", "p99")


@dataclass
class Comparison:
    """The result of a comparison, ready for the views."""

    base: list[RunSummary]
    new: list[RunSummary]
    rows: pd.DataFrame  # ROW_COLUMNS, times in ms
    users: dict[str, Any] | None
    options: ReportOptions
    pooling: dict[str, str]
    warnings: list[str]
    sides: dict[str, dict[str, Any]]  # base/new: requests, error rate, login success, SLOs


def side_timings(runs: list[RunSummary]) -> tuple[pd.DataFrame, str]:
    """One (kind, name) -> avg, p99 table for a side, and how repeats were combined."""
    if len(runs) == 1 and not runs[0].histograms:
        t = runs[0].timings
        return t.set_index(["kind", "name"])[["avg_ms", "p99_ms", "count"]], "single run"
    if all(r.histograms for r in runs):
        return pooled_timings(runs), "pooled: avg = total time / total count, p99 from merged HDR"
    allt = pd.concat([r.timings for r in runs], ignore_index=True)
    if allt.empty:
        return allt.set_index(["kind", "name"])[["avg_ms", "p99_ms", "count"]], "no timings"
    mean = allt.groupby(["kind", "name"])[["avg_ms", "p99_ms"]].mean()
    mean["count"] = allt.groupby(["kind", "name"])["count"].sum(min_count=1)
    how = (
        "single run" if len(runs) == 1 else "mean of the repeats' values (ltng gives no histograms)"
    )
    return mean, how


def pooled_timings(runs: list[RunSummary]) -> pd.DataFrame:
    """mmload repeats: exact pooled mean and the p99 of the merged histograms."""
    allt = pd.concat([r.timings for r in runs], ignore_index=True)
    g = allt.groupby(["kind", "name"])[["count", "sum_ms"]].sum(min_count=1)
    g["avg_ms"] = g["sum_ms"] / g["count"].where(g["count"] > 0)
    p99 = []
    for _, name in g.index:
        merged = hdr.merge(r.histograms.get(name, hdr.EMPTY) for r in runs)
        p99.append(hdr.percentiles_ms(merged, (99.0,))["p99_ms"])
    g["p99_ms"] = p99
    return g[["avg_ms", "p99_ms", "count"]]


def classify(delta: float, pct: float | None, counts: tuple[Any, Any], opt: ReportOptions) -> str:
    """worsened / improved / unchanged (under min_delta_pct % or under min_delta_ms), or
    few_samples when a side has fewer than min_samples requests (its p99 means little)."""
    if any(c is not None and not pd.isna(c) and c < opt.min_samples for c in counts):
        return "few_samples"
    if pct is not None and abs(pct) < opt.min_delta_pct:
        return "unchanged"
    if abs(delta) < opt.min_delta_ms:
        return "unchanged"
    return "worsened" if delta > 0 else "improved"


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def timing_rows(base: pd.DataFrame, new: pd.DataFrame, opt: ReportOptions) -> pd.DataFrame:
    """Every (kind, name, stat) of either side with its delta and change class."""
    keys = sorted(set(base.index) | set(new.index))
    out = []
    for kind, name in keys:
        counts = (_count(base, (kind, name)), _count(new, (kind, name)))
        for stat in STATS:
            col = f"{stat}_ms"
            b = _num(base[col].get((kind, name))) if (kind, name) in base.index else None
            n = _num(new[col].get((kind, name))) if (kind, name) in new.index else None
            if b is None and n is None:
                continue
            if b is None or n is None:
                change = "only_new" if b is None else "only_base"
                out.append((kind, name, stat, b, n, None, None, change, *counts))
                continue
            delta = n - b
            pct = delta / b * 100.0 if b else None
            out.append(
                (kind, name, stat, b, n, delta, pct, classify(delta, pct, counts, opt), *counts)
            )
    return pd.DataFrame(out, columns=ROW_COLUMNS)


def _count(table: pd.DataFrame, key: tuple[str, str]) -> int | None:
    if key not in table.index or "count" not in table:
        return None
    v = table["count"].get(key)
    return None if v is None or pd.isna(v) else int(v)


def side_summary(runs: list[RunSummary]) -> dict[str, Any]:
    """Requests, error rate, login success and SLO verdicts of one side, pooled over repeats.

    Counts add up over the repeats (error rate = all failed / all requests; login success = all
    logged in / all arrivals); None where the side's data has no such figure (ltng reports).
    """
    req = [r.requests for r in runs if r.requests is not None]
    err = [r.errors for r in runs if r.errors is not None]
    arr = [r.arrivals for r in runs if r.arrivals]
    ok = [r.logged_in for r in runs if r.arrivals]
    slos: dict[str, dict[str, int]] = {}
    for r in runs:
        for s in r.slos or []:
            slos.setdefault(s.name, {"pass": 0, "fail": 0, "unmeasured": 0})[s.status] += 1
    verdicts = [r.verdict for r in runs if r.verdict]
    return {
        "runs": len(runs),
        "requests": sum(req) if req else None,
        "errors": sum(err) if err else None,
        "error_rate": sum(err) / sum(req) if req and sum(req) else None,
        "arrivals": sum(arr) if arr else None,
        "login_success": sum(ok) / sum(arr) if arr else None,
        "slos": slos,
        "verdicts": {v: verdicts.count(v) for v in sorted(set(verdicts))},
    }


def spread(values: list[float]) -> dict[str, Any]:
    """runs, mean, min, max and sample stdev (None for a single run) of supported users."""
    return {
        "runs": len(values),
        "values": values,
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else None,
    }


def welch_p(base: list[float], new: list[float]) -> float:
    """Two-sided p-value of Welch's t-test; exact 0/1 when both sides have no variance."""
    from scipy import stats  # imported here: scipy.stats costs a second at start-up

    if np.var(base) == 0 and np.var(new) == 0:
        return 1.0 if statistics.fmean(base) == statistics.fmean(new) else 0.0
    return float(stats.ttest_ind(new, base, equal_var=False).pvalue)


def users_verdict(base: list[float], new: list[float], opt: ReportOptions) -> dict[str, Any]:
    """Supported users base vs new, with a verdict that separates change from noise."""
    b, n = spread(base), spread(new)
    delta = n["mean"] - b["mean"]
    pct = delta / b["mean"] * 100.0 if b["mean"] else None
    outside = pct is None or abs(pct) > opt.noise_pct
    direction = "improved" if delta > 0 else "regressed"
    out: dict[str, Any] = {"base": b, "new": n, "delta": delta, "delta_pct": pct}
    if len(base) >= 2 and len(new) >= 2:
        p = welch_p(base, new)
        significant = p < opt.alpha
        verdict = direction if (significant and outside) else "noise"
        out |= {
            "method": f"Welch's t-test (scipy.stats.ttest_ind, unequal variances), "
            f"alpha {opt.alpha:g}, and Mattermost's ±{opt.noise_pct:g} % noise band",
            "p_value": p,
            "significant": significant,
        }
        reason = (
            f"{'significant' if significant else 'not significant'} (p = {p:.3g}), "
            f"{'outside' if outside else 'within'} ±{opt.noise_pct:g} %"
        )
    else:
        verdict = direction if outside else "noise"
        out |= {
            "method": f"Mattermost's ±{opt.noise_pct:g} % noise band "
            "(no statistical test: fewer than 2 repeats on a side)",
            "p_value": None,
            "significant": None,
        }
        reason = f"{'outside' if outside else 'within'} ±{opt.noise_pct:g} %"
    out["verdict"] = verdict
    out["reason"] = reason
    return out


def side_warnings(name: str, runs: list[RunSummary]) -> list[str]:
    """Warn when a side mixes architectures, builds or sources, or has non-completed runs."""
    out = []
    for attr in ("architecture", "label", "kind"):
        values = sorted({str(getattr(r, attr)) for r in runs})
        if len(values) > 1:
            out.append(f"{name} mixes {attr}s: {', '.join(values)}")
    for r in runs:
        out.extend(f"{name}: {r.name}: {w}" for w in r.warnings)
        if r.outcome not in (None, "completed"):
            out.append(f"{name}: {r.name} outcome is {r.outcome}")
    return out


def kind_warning(base: list[RunSummary], new: list[RunSummary]) -> list[str]:
    """ltng names API handlers (`login`), mmload names URL templates: they do not line up."""
    kinds = ({r.kind for r in base}, {r.kind for r in new})
    if len(kinds[0] | kinds[1]) > 1:
        return [
            "the sides mix ltng reports and mmload records: endpoint names do not line up "
            "(ltng: API handler names; mmload: method + URL template)"
        ]
    return []


def compare(base: list[RunSummary], new: list[RunSummary], opt: ReportOptions) -> Comparison:
    """Compare two sides; each holds one or more runs."""
    bt, bhow = side_timings(base)
    nt, nhow = side_timings(new)
    ub = [float(r.supported_users) for r in base if r.supported_users is not None]
    un = [float(r.supported_users) for r in new if r.supported_users is not None]
    users = users_verdict(ub, un, opt) if ub and un else None
    return Comparison(
        base=base,
        new=new,
        rows=timing_rows(bt, nt, opt),
        users=users,
        options=opt,
        pooling={"base": bhow, "new": nhow},
        warnings=side_warnings("base", base) + side_warnings("new", new) + kind_warning(base, new),
        sides={"base": side_summary(base), "new": side_summary(new)},
    )


def changed(rows: pd.DataFrame, kind: str, stat: str, change: str) -> pd.DataFrame:
    """The worsened (delta % descending) or improved (ascending) rows of one kind and stat."""
    sel = rows[(rows["kind"] == kind) & (rows["stat"] == stat) & (rows["change"] == change)]
    key = sel["delta_pct"].fillna(math.inf if change == "worsened" else -math.inf)
    order = key.sort_values(ascending=change == "improved", kind="stable").index
    return sel.loc[order]
