"""The campaign state file (``campaign-state.json`` in the campaign's output folder).

Every step is recorded in it, each write atomic (``files.write_atomic``): the runs (pending,
running, finished, failed, interrupted) with their record, the deployments (up since, down at,
$/h) and a list of events. `campaign run` reads it back to resume: a finished run is never
repeated; a run left ``running`` by a process that is gone was interrupted and runs again.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mmload.config.loader import parse_json, read_text
from mmload.errors import UserError
from mmload.files import write_atomic

STATE_FILE = "campaign-state.json"
SCHEMA = "mmload.campaign-state/1"
DONE = "finished"
RUN_STATUSES = ("pending", "running", DONE, "failed", "interrupted")


def now_iso() -> str:
    """The time now, UTC, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fingerprint(path: Path) -> str:
    """sha256 of the campaign file: a state belongs to one content of it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class State:
    """The state document and its file; every change is written at once, under a lock."""

    path: Path
    data: dict[str, Any]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def save(self) -> None:
        """Write the document (atomic: a reader never sees half of it)."""
        self.data["updated_at"] = now_iso()
        self.data["updated_epoch"] = time.time()
        write_atomic(self.path, json.dumps(self.data, indent=2) + "\n")

    def event(self, what: str) -> None:
        """Record one step, with the time."""
        with self.lock:
            self.data["events"].append({"at": now_iso(), "what": what})
            self.save()

    def run(self, key: str) -> dict[str, Any]:
        """The entry of one run."""
        return self.data["runs"][key]

    def update_run(self, key: str, what: str | None = None, **fields: Any) -> None:
        """Change a run's entry (and record the step ``what``)."""
        with self.lock:
            self.data["runs"][key].update(fields)
            if what:
                self.data["events"].append({"at": now_iso(), "what": what})
            self.save()

    def update_deployment(self, name: str, what: str | None = None, **fields: Any) -> None:
        """Change a deployment's entry (and record the step ``what``)."""
        with self.lock:
            self.data["deployments"][name].update(fields)
            if what:
                self.data["events"].append({"at": now_iso(), "what": what})
            self.save()

    def set(self, **fields: Any) -> None:
        """Change top-level fields (status, …)."""
        with self.lock:
            self.data.update(fields)
            self.save()


def new_document(campaign: str, source: str, digest: str) -> dict[str, Any]:
    """An empty state."""
    return {
        "schema": SCHEMA,
        "campaign": campaign,
        "source": source,
        "sha256": digest,
        "status": "new",
        "started_at": now_iso(),
        "updated_at": now_iso(),
        "invocations": 0,
        "deployments": {},
        "runs": {},
        "events": [],
    }


def read_state(out: Path) -> dict[str, Any] | None:
    """The state document under ``out``, or None when the campaign has not started."""
    path = out / STATE_FILE
    if not path.exists():
        return None
    data = parse_json(read_text(path, 64 * 1024 * 1024), str(path))
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UserError(f"not a campaign state ({SCHEMA})", source=str(path))
    return data


def open_state(out: Path, campaign: str, source: Path) -> State:
    """The state to run with: read back (a changed campaign file refused), else new.

    Runs left ``running`` were interrupted (their process is gone: this one holds the lock).
    """
    digest = fingerprint(source)
    data = read_state(out)
    if data is None:
        data = new_document(campaign, str(source), digest)
    elif data.get("sha256") != digest:
        raise UserError(
            f"changed since its campaign ran into {out} (resuming would mix two campaigns): "
            "restore it, or set another output_dir",
            source=str(source),
        )
    state = State(out / STATE_FILE, data)
    for key, entry in data["runs"].items():
        if entry["status"] == "running":
            entry["status"] = "interrupted"
            data["events"].append({"at": now_iso(), "what": f"{key}: interrupted (found running)"})
    last = data.get("updated_epoch") or time.time()
    for name, entry in data["deployments"].items():
        if entry.get("status") == "up":  # its process is gone, and with it the simulator
            entry["status"] = "gone"
            data["events"].append({"at": now_iso(), "what": f"{name}: gone (found up)"})
        for span in entry.get("spans", []):
            span[1] = span[1] if span[1] is not None else last
    data["invocations"] = data.get("invocations", 0) + 1
    out.mkdir(parents=True, exist_ok=True)
    state.save()
    return state


def spent_usd(data: dict[str, Any], now: float | None = None) -> float:
    """Money spent: each deployment's $/h over the time it existed (up to now while up)."""
    now = time.time() if now is None else now
    total = 0.0
    for d in data.get("deployments", {}).values():
        for since, until in intervals(d, now):
            total += d.get("usd_per_hour", 0.0) * max(0.0, until - since) / 3600
    return total


def intervals(d: dict[str, Any], now: float) -> Iterator[tuple[float, float]]:
    """A deployment's lifetimes (epoch seconds): each ``[up, down]`` it recorded."""
    for span in d.get("spans", []):
        yield span[0], span[1] if span[1] is not None else now
