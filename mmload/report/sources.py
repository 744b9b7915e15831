"""Find runs under the paths a user gives: mmload run records and ltng report files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from mmload import record
from mmload.errors import UserError
from mmload.report.ltng import REPORT_SUFFIXES, load_ltng, looks_like_ltng, read_text_maybe_gz
from mmload.report.model import RunSummary
from mmload.report.runs import build_run_report, summary_of


def is_run_record(path: Path) -> bool:
    """A directory holding run.json."""
    return path.is_dir() and (path / record.RUN_JSON).is_file()


def _is_report_name(path: Path) -> bool:
    return path.name != record.RUN_JSON and path.name.endswith(REPORT_SUFFIXES)


def _json_is_ltng(path: Path) -> bool:
    """`.json` files are only taken from a folder walk when they are ltng reports."""
    if path.name.endswith((".out", ".out.gz")):
        return True
    try:
        return looks_like_ltng(json.loads(read_text_maybe_gz(path) or "null"))
    except (json.JSONDecodeError, UserError):
        return False


def discover(path: Path) -> list[Path]:
    """Run records and ltng report files at or under ``path`` (sorted; records not entered)."""
    if not path.exists():
        raise UserError("no such file or directory", source=str(path))
    if path.is_file() or is_run_record(path):
        return [path]
    found: list[Path] = []
    for child in sorted(path.iterdir()):
        if child.is_dir():
            found += discover(child)
        elif _is_report_name(child) and _json_is_ltng(child):
            found.append(child)
    return found


def load_runs(
    paths: list[str | Path],
    architecture: str | None = None,
    label: str | None = None,
    detail: str = "timings",
    progress: Callable[[str], None] | None = None,
) -> list[RunSummary]:
    """Every run at or under ``paths`` as RunSummary; nothing found is a UserError.

    ``detail`` is ``head`` (identity and supported users: run.json only, the top of ltng
    files; enough for ceiling tables), ``timings`` or ``full`` (ltng graphs too).
    """
    runs: list[RunSummary] = []
    for raw in paths:
        path = Path(raw)
        found = discover(path)
        if not found:
            raise UserError("no mmload run records or ltng reports found here", source=str(path))
        for item in found:
            if progress:
                progress(str(item))
            runs.append(load_one(item, architecture, label, detail))
    return runs


def load_one(path: Path, architecture: str | None, label: str | None, detail: str) -> RunSummary:
    """One run record or ltng report file."""
    if is_run_record(path):
        if detail == "head":
            return summary_from_meta(path, architecture, label)
        return summary_of(build_run_report(path), architecture, label)
    if path.is_dir():
        raise UserError("not a run record (no run.json)", source=str(path))
    return load_ltng(path, architecture, label, detail)


def summary_from_meta(path: Path, architecture: str | None, label: str | None) -> RunSummary:
    """A RunSummary from run.json alone (no request tables read)."""
    meta = record.read_run(path)
    users = meta.get("supported_users")
    return RunSummary(
        source=str(path),
        kind="mmload",
        name=str(meta.get("run_id") or path.name),
        architecture=architecture or meta.get("architecture") or None,
        label=label or meta.get("label") or meta.get("server_version") or None,
        supported_users=float(users) if isinstance(users, int | float) else None,
        outcome=meta.get("outcome"),
    )
