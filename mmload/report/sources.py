"""Find runs under the paths a user gives: mmload run records and ltng report files."""

from __future__ import annotations

import glob
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
    except (json.JSONDecodeError, RecursionError, UserError):
        return False


GLOB_CHARS = set("*?[")


def expand(path: Path) -> list[Path]:
    """``path`` itself, or what it matches when it is a pattern the shell did not expand
    (quoted, or matching nothing in the shell's eyes), e.g. ``'runs/*-esr-10.11*'``."""
    if path.exists() or not GLOB_CHARS & set(str(path)):
        return [path]
    matches = sorted(Path(p) for p in glob.glob(str(path)))
    if not matches:
        raise UserError("no file or directory matches this pattern", source=str(path))
    return matches


def discover(path: Path) -> list[Path]:
    """Run records and ltng report files at or under ``path`` (sorted; records not entered)."""
    if not path.exists():
        found = expand(path)
        if found != [path]:
            return [item for p in found for item in discover(p)]
        raise UserError("no such file or directory", source=str(path))
    if path.is_file() or is_run_record(path):
        return [path]
    if not path.is_dir():
        raise UserError(
            "not a regular file or directory (a FIFO, device or socket)", source=str(path)
        )
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
    skipped: list[str] | None = None,
) -> list[RunSummary]:
    """Every run at or under ``paths`` as RunSummary; nothing found is a UserError.

    ``detail`` is ``head`` (identity and supported users: run.json only, the top of ltng
    files; enough for ceiling tables), ``timings`` or ``full`` (ltng graphs too).
    ``skipped``: when given, a damaged run or report is listed there (one line saying what is
    wrong) and skipped instead of stopping everything.
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
            try:
                runs.append(load_one(item, architecture, label, detail))
            except UserError as exc:
                if skipped is None:
                    raise
                skipped.append(f"{exc} (damaged: skipped)")
    if not runs and skipped:
        raise UserError(f"no readable run: {skipped[0]}")
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
    run = record.read_meta(path)
    return RunSummary(
        source=str(path),
        kind="mmload",
        name=str(run.run_id or path.name),
        architecture=architecture or run.architecture or None,
        label=label or run.label or run.server_version or None,
        supported_users=run.supported_users,
        started_at=run.started_at,
        ended_at=run.ended_at,
        outcome=run.outcome,
        slos=list(run.slos),
        verdict=record.run_verdict(run).status,
    )


def split_sides(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """BASE and NEW from the paths given to ``compare``.

    Two paths: one side each (a run, an ltng report, a folder of repeats, or a quoted pattern).
    More (the shell expanded ``runs/*-esr-10.11 runs/*-esr-11.7`` into many run folders): the
    paths are split where the label changes, which must happen exactly once.
    """
    if len(paths) == 2:
        return [paths[0]], [paths[1]]
    if len(paths) < 2:
        raise UserError(
            "compare needs two sides: BASE NEW (each a run, a folder of repeats, or a pattern)",
            source="command line",
        )
    labels = [_label_of(p) for p in paths]
    cuts = [i for i in range(1, len(paths)) if labels[i] != labels[i - 1]]
    if len(cuts) != 1:
        seen = list(dict.fromkeys(str(lb) for lb in labels))
        raise UserError(
            f"{len(paths)} paths with {len(seen)} labels in turn ({', '.join(seen)}): give two "
            "sides, BASE NEW, each a folder of repeats or a quoted pattern, e.g. "
            "'runs/*-esr-10.11' 'runs/*-esr-11.7'",
            source="command line",
        )
    return paths[: cuts[0]], paths[cuts[0] :]


def _label_of(path: Path) -> str | None:
    """The label a compare side would get from this path (run.json, or the ltng report)."""
    if is_run_record(path):
        run = record.read_meta(path)
        return run.label or run.server_version
    if path.is_file():
        return load_ltng(path, None, None, "head").label
    return str(path)
