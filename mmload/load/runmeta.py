"""A run's record opened: the disk-space check, the run directory and the first run.json."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmload import __version__, record
from mmload.config.scenario import RunOptions, Scenario
from mmload.errors import UserError
from mmload.load.curves import requested_windows
from mmload.load.diskspace import check_free_space, estimate_bytes
from mmload.load.phases import expected_s
from mmload.load.population import SECRET_FIELDS
from mmload.load.recorder import RecordWriter
from mmload.load.schedule import ArrivalSchedule, arrival_schedule


def disk_warning(
    scenario: Scenario, opts: RunOptions, peak_users: int, processes: int
) -> str | None:
    """The free-space check of ``--out`` for this run (a UserError when clearly too little)."""
    need = estimate_bytes(scenario, peak_users, expected_s(scenario), processes)
    return check_free_space(Path(opts.out), need)


def open_record(
    scenario: Scenario,
    opts: RunOptions,
    scenario_file: str | None,
    warnings: list[str],
    on_failure: Callable[[str], None],
) -> RecordWriter:
    """A fresh run directory and its writer; a folder that cannot be written is a UserError."""
    try:
        run_dir = record.new_run_dir(opts.out, scenario.name, opts.label)
        meta = initial_meta(scenario, opts, run_dir, scenario_file)
        meta["warnings"] = warnings
        return RecordWriter(run_dir, meta, on_failure)
    except OSError as exc:
        why = f"{exc.strerror or exc}"
        raise UserError(
            f"cannot write the run record in {opts.out}: {why}",
            source="command line",
            field="--out",
        ) from None


def note_schedule(meta: dict[str, Any], scenario: Scenario, t0: float) -> ArrivalSchedule:
    """The run's arrival schedule, its requested curve kept in run.json (``arrival_curve``)."""
    schedule = arrival_schedule(scenario)
    if schedule.users:
        meta["arrival_curve"] = {
            "curve": scenario.arrivals.curve,
            "t0": record.iso_epoch(t0),
            "window_s": record.WINDOW_S,
            "requested": requested_windows(schedule, record.WINDOW_S),
        }
    return schedule


def initial_meta(
    s: Scenario, o: RunOptions, run_dir: Path, scenario_file: str | None
) -> dict[str, Any]:
    """run.json as the run starts (outcome ``running``)."""
    return {
        "schema": record.SCHEMA_VERSION,
        "run_id": run_dir.name,
        "scenario": {
            "name": s.name,
            "kind": s.kind,
            "file": scenario_file,
            "spec": s.model_dump(mode="json", exclude={"population": SECRET_FIELDS}),
        },
        "parameters": {
            "scale": o.scale,
            "users": s.users,
            "arrival_s": s.arrival_s,
            "hold_s": s.hold_s,
            "expected_s": expected_s(s),
            "workers": o.workers,
            "remote_workers": o.remote_workers,
            "rate_cap": s.rate_cap,
            "max_users": o.max_users,
            "prometheus": o.prometheus,
        },
        "target": o.target,
        "server_version": None,
        "licensed": None,
        "label": o.label,
        "architecture": o.architecture,
        "tool_version": __version__,
        "started_at": record.iso(record.utc_now()),
        "ended_at": None,
        "outcome": "running",
        "slos": [],
        "supported_users": None,
    }
