"""Import the report JSON written by Mattermost's load-test tool (``ltctl report generate``).

The JSON (plain or gzip) has ``Label``, ``StartTime``, ``EndTime``, ``AvgStoreTimes``,
``P99StoreTimes``, ``AvgAPITimes``, ``P99APITimes`` (method/handler -> seconds as a string) and
``Graphs`` (``[{"Name", "Values": [[epoch, "value"], ...]}]``). A sibling ``results.txt`` gives the
run's UTC window and ``Num users:`` (the supported users the coordinator reported); a sibling
``config/deployer.json`` names the Mattermost build (its download URL), used as the label.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from mmload.config.loader import parse_json, read_bytes
from mmload.errors import UserError
from mmload.report.model import TIMING_COLUMNS, RunSummary, architecture_from_name

SECTIONS = {
    ("store", "avg_ms"): "AvgStoreTimes",
    ("store", "p99_ms"): "P99StoreTimes",
    ("api", "avg_ms"): "AvgAPITimes",
    ("api", "p99_ms"): "P99APITimes",
}
MAX_REPORT_BYTES = 1 << 30  # ltng reports with graphs are tens of MiB
REPORT_SUFFIXES = (".out", ".out.gz", ".json", ".json.gz")
_USERS = re.compile(r"^\s*Num users:\s*(\d+)\s*$", re.MULTILINE)
_WINDOW = re.compile(r'^\s*UTC time:\s*"([^"]+)"\s*"([^"]+)"', re.MULTILINE)
_VERSION_URL = re.compile(r"/(\d+\.\d+\.\d+[0-9A-Za-z.+-]*?)/mattermost")


def read_text_maybe_gz(path: Path) -> str:
    """The file's text, gunzipped when it is gzip (by magic bytes, not by name)."""
    raw = read_bytes(path, MAX_REPORT_BYTES)
    if raw[:2] == b"\x1f\x8b":
        try:  # bounded: a small gzip bomb must not fill memory
            unzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
            raw = unzip.decompress(raw, MAX_REPORT_BYTES + 1)
            if len(raw) > MAX_REPORT_BYTES or unzip.unconsumed_tail:
                raise UserError(
                    f"too large: over {MAX_REPORT_BYTES:,} bytes uncompressed", source=str(path)
                )
        except zlib.error as exc:
            raise UserError(f"corrupt gzip: {exc}", source=str(path)) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError("not UTF-8 text (is this an ltng report?)", source=str(path)) from None


def report_stem(path: Path) -> str:
    """``ctL110-1.out.gz`` -> ``ctL110-1``."""
    name = path.name
    for suffix in sorted(REPORT_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def parse_seconds(value: Any, path: Path, field: str) -> float:
    """A Prometheus sample value (a string of seconds, or NaN/Inf) as milliseconds."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UserError(
            f"expected seconds as a number, got {value!r}", source=str(path), field=field
        ) from None
    return seconds * 1000.0 if math.isfinite(seconds) else math.nan


def parse_time(value: Any, path: Path, field: str) -> datetime | None:
    """An RFC 3339 time from the report, or None when absent."""
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise UserError(f"not an RFC 3339 time: {value!r}", source=str(path), field=field) from None


def timings_from_report(data: dict[str, Any], path: Path) -> pd.DataFrame:
    """One row per (kind, name) with avg_ms and p99_ms from the four time maps."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for (kind, column), key in SECTIONS.items():
        section = data.get(key) or {}
        if not isinstance(section, dict):
            raise UserError("expected an object of name -> seconds", source=str(path), field=key)
        for name, value in section.items():
            row = rows.setdefault((kind, name), {"kind": kind, "name": name})
            row[column] = parse_seconds(value, path, f"{key}.{name}")
    frame = pd.DataFrame(list(rows.values()), columns=TIMING_COLUMNS)
    return frame.sort_values(["kind", "name"], ignore_index=True)


def parse_results_txt(path: Path) -> dict[str, Any]:
    """``UTC time: "start" "end"`` and ``Num users: N`` from an ltng results.txt."""
    text = path.read_text(encoding="utf-8", errors="replace")
    out: dict[str, Any] = {}
    if m := _USERS.search(text):
        out["supported_users"] = int(m.group(1))
    if m := _WINDOW.search(text):
        fmt = "%Y-%m-%d %H:%M:%S.%f"
        with contextlib.suppress(ValueError):
            out["window"] = tuple(datetime.strptime(t, fmt).replace(tzinfo=UTC) for t in m.groups())
    return out


def build_label_from_config(report_dir: Path) -> str | None:
    """The Mattermost version deployed, from a sibling ``config/deployer.json`` if present."""
    deployer = report_dir / "config" / "deployer.json"
    if not deployer.is_file():
        return None
    try:
        url = json.loads(deployer.read_text(encoding="utf-8")).get("MattermostDownloadURL", "")
    except (json.JSONDecodeError, OSError, AttributeError):
        return None
    m = _VERSION_URL.search(str(url))
    return m.group(1) if m else None


def looks_like_ltng(data: Any) -> bool:
    """True for a decoded ltng report object."""
    return isinstance(data, dict) and "Label" in data and any(k in data for k in SECTIONS.values())


def read_head(path: Path, size: int = 4096) -> str:
    """The first ``size`` characters of the (possibly gzipped) file, without reading it all."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(65536)
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", source=str(path)) from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, size)
        except zlib.error as exc:
            raise UserError(f"corrupt gzip: {exc}", source=str(path)) from None
    return raw[:size].decode("utf-8", errors="replace")


_HEAD_FIELD = {k: re.compile(rf'"{k}"\s*:\s*"([^"]*)"') for k in ("Label", "StartTime", "EndTime")}


def head_data(path: Path) -> dict[str, Any] | None:
    """Label and times from the top of a report (ltctl writes them first), or None."""
    head = read_head(path)
    found = {k: m.group(1) for k, rx in _HEAD_FIELD.items() if (m := rx.search(head))}
    return found if head.lstrip().startswith("{") and "Label" in found else None


def parse_report(text: str, path: Path, graphs: bool) -> dict[str, Any]:
    """Decode the report JSON; without graphs, only the part before ``"Graphs"`` when possible.

    ltctl encodes the fields in a fixed order with Graphs (most of the bytes) last, so cutting
    there and closing the object decodes the timings several times faster; any doubt (no marker,
    or the cut text does not decode) falls back to decoding everything.
    """
    if not graphs:
        cut = text.rfind('"Graphs"')
        if cut > 0:
            try:
                return json.loads(text[:cut].rstrip().rstrip(",") + "}")
            except (json.JSONDecodeError, RecursionError):
                pass
    return parse_json(text, str(path))


def load_ltng(
    path: str | Path,
    architecture: str | None = None,
    label: str | None = None,
    detail: str = "timings",
) -> RunSummary:
    """Read one ltng report (plain or .gz) and its siblings into a RunSummary.

    ``detail`` is ``head`` (identity and supported users only: enough for ceiling tables),
    ``timings`` (plus the API/store times) or ``full`` (plus the time-series graphs).
    An empty report file (the tool sometimes writes none) is accepted when a sibling
    ``results.txt`` gives the supported users; the run then has no timings and a warning.
    """
    path = Path(path)
    results_file = path.parent / "results.txt"
    results = parse_results_txt(results_file) if results_file.is_file() else {}
    warnings: list[str] = []
    data: dict[str, Any] | None = head_data(path) if detail == "head" else None
    if data is None:
        text = read_text_maybe_gz(path)
        if not text.strip():
            if "supported_users" not in results:
                raise UserError("empty report (and no results.txt beside it)", source=str(path))
            data = {"Label": report_stem(path)}
            warnings.append(f"{path.name} is empty: supported users from results.txt only")
        else:
            data = parse_report(text, path, graphs=detail == "full")
            if not looks_like_ltng(data):
                raise UserError(
                    "not an ltng report (expected Label and AvgAPITimes/...StoreTimes)",
                    source=str(path),
                )
    name = str(data.get("Label") or report_stem(path))
    window = results.get("window") or (None, None)
    graphs = data.get("Graphs") or []
    return RunSummary(
        source=str(path),
        kind="ltng",
        name=name,
        architecture=architecture or architecture_from_name(name),
        label=label or build_label_from_config(path.parent),
        supported_users=results.get("supported_users"),
        started_at=parse_time(data.get("StartTime"), path, "StartTime") or window[0],
        ended_at=parse_time(data.get("EndTime"), path, "EndTime") or window[1],
        outcome="completed",
        timings=timings_from_report(data, path),
        graphs=graphs if isinstance(graphs, list) else [],
        warnings=warnings,
    )
