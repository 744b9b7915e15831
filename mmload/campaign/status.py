"""`mmload campaign status`: progress (runs by status, what runs now) and money spent."""

from __future__ import annotations

import os
from typing import Any

from mmload.campaign.plan import Plan
from mmload.campaign.report import progress
from mmload.campaign.run import run_key
from mmload.campaign.state import DONE, STATE_FILE, spent_usd

SCHEMA = "mmload.campaign-status/1"


def status_document(plan: Plan, data: dict[str, Any] | None) -> dict[str, Any]:
    """The campaign's progress from its state (None: not started)."""
    total = len(plan.runs)
    if data is None:
        return {
            "schema": SCHEMA,
            "campaign": plan.campaign.name,
            "state": str(plan.output_dir / STATE_FILE),
            "status": "not started",
            "runs_total": total,
            "runs_done": 0,
            "progress": {"pending": total},
            "running": [],
            "deployments": {},
            "spent_usd": 0.0,
            "planned_cost_usd": plan.cost_usd,
            "last_step": None,
        }
    counts = progress(plan, data)
    running = [
        run_key(r) for r in plan.runs if data["runs"].get(run_key(r), {}).get("status") == "running"
    ]
    events = data.get("events") or []
    return {
        "schema": SCHEMA,
        "campaign": plan.campaign.name,
        "state": str(plan.output_dir / STATE_FILE),
        "status": live_status(data),
        "runs_total": total,
        "runs_done": counts.get(DONE, 0),
        "progress": counts,
        "running": running,
        "deployments": {
            name: {k: d.get(k) for k in ("architecture", "status", "version", "usd_per_hour")}
            for name, d in data.get("deployments", {}).items()
        },
        "spent_usd": spent_usd(data),
        "planned_cost_usd": plan.cost_usd,
        "last_step": events[-1] if events else None,
        "updated_at": data.get("updated_at"),
    }


def live_status(data: dict[str, Any]) -> str:
    """The recorded status; ``running`` whose process is gone says so (killed)."""
    status = str(data.get("status"))
    pid = data.get("pid")
    if status == "running" and isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "stopped (its `campaign run` process is gone: run it again to resume)"
        except PermissionError:
            pass
    return status


def status_text(doc: dict[str, Any]) -> str:
    """The status for a reader, a few lines."""
    lines = [
        f"campaign {doc['campaign']}: {doc['status']}; {doc['runs_done']} of "
        f"{doc['runs_total']} runs finished ("
        + ", ".join(f"{n} {s}" for s, n in sorted(doc["progress"].items()))
        + ")",
        f"spent ${doc['spent_usd']:,.2f} of the planned ${doc['planned_cost_usd']:,.2f}",
    ]
    for key in doc["running"]:
        lines.append(f"running: {key}")
    for name, d in doc["deployments"].items():
        lines.append(
            f"deployment {name} ({d['architecture']}): {d['status']}"
            + (f", version {d['version']}" if d["version"] else "")
            + f", ${d['usd_per_hour'] or 0:,.2f}/h"
        )
    if doc["last_step"]:
        lines.append(f"last step: {doc['last_step']['at']} {doc['last_step']['what']}")
    lines.append(f"state: {doc['state']}")
    return "\n".join(lines) + "\n"
