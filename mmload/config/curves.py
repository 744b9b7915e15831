"""A ``replay`` curve's source read into per-interval login counts, when the scenario is loaded.

- ``csv`` (``#`` lines are comments): a column headed ``count`` (logins per ``interval_s``), a
  column headed ``timestamp`` (one row per login: RFC 3339 or epoch seconds, binned to
  ``interval_s`` from the first), or, without a header, one count per line.
- ``access_log``: the ``POST /api/v4/users/login`` lines (every answer: a refused login is
  demand too) of an nginx log in the combined format (``[02/Dec/2026:09:00:01 +0000]``) or of
  an AWS ALB log (its second field, ``2026-12-02T09:00:01.123456Z``); ``.gz`` is read too.
- ``prometheus``: ``/api/v1/query_range`` of the server's login rate (per second, multiplied
  by the step) or count per step, summed over the series.

The counts then travel in the scenario itself (every worker, and the record, sees them).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from mmload.config.arrivals import MAX_SEGMENTS, PromSource, ReplayCurve
from mmload.config.loader import decode_text, read_bytes, validate_model
from mmload.errors import UserError

MAX_SOURCE_BYTES = 1 << 30
PROM_TIMEOUT_S = 30.0
LOGIN = r"/api/v4/users/login(?:\?\S*)? HTTP/[\d.]+\""
NGINX_LINE = re.compile(r"\[([^\]]+)\] \"POST (?:https?://[^/\s]+)?(?:/[^\s\"]*)?" + LOGIN)
ALB_LINE = re.compile(r"^\S+ (\S+) .*?\"POST \S+?" + LOGIN)
NGINX_TIME = "%d/%b/%Y:%H:%M:%S %z"


M = TypeVar("M", bound=BaseModel)


def with_replay_read(scenario: M, path: Path) -> M:
    """A scenario whose ``replay`` curve's source is read into its counts, and users and
    arrival_s taken from them unless the file gives them."""
    curve = getattr(scenario, "arrivals", None)
    if not isinstance(curve, ReplayCurve) or curve.counts is not None:
        return scenario
    data = scenario.model_dump(exclude_unset=True)
    data["arrivals"] = resolve_replay(curve, path).model_dump(exclude_none=True)
    return validate_model(type(scenario), data, str(path))


def portable_text(scenario: BaseModel, path: Path) -> str:
    """The scenario file's text for another machine (the remote master): a ``replay`` curve read
    from a file or Prometheus is sent as its counts (JSON, which is YAML), since its source
    stays here; any other scenario as written."""
    curve = getattr(scenario, "arrivals", None)
    if not isinstance(curve, ReplayCurve) or not (
        curve.csv or curve.access_log or curve.prometheus
    ):
        return path.read_text(encoding="utf-8")
    data = scenario.model_dump(mode="json", exclude_unset=True)
    data["arrivals"] = curve.model_dump(mode="json", exclude={"csv", "access_log", "prometheus"})
    return json.dumps(data, indent=1) + "\n"


def resolve_replay(curve: ReplayCurve, scenario_path: Path) -> ReplayCurve:
    """``curve`` with ``counts`` read from its source (files relative to the scenario's folder);
    an error names the scenario, ``arrivals.<source>`` and, for a file, its line."""
    if curve.counts is not None:
        return curve
    field = next(n for n in ("prometheus", "csv", "access_log") if getattr(curve, n))
    try:
        counts, interval = _read(curve, scenario_path.parent)
        if not any(c > 0 for c in counts):
            raise UserError("the curve has no logins")
        if len(counts) > MAX_SEGMENTS:
            raise UserError(f"{len(counts):,} intervals: at most {MAX_SEGMENTS:,}")
    except UserError as err:
        where = ": ".join(p for p in (err.source, err.field) if p)
        msg = f"{where}: {err.message}" if where else err.message
        raise UserError(msg, source=str(scenario_path), field=f"arrivals.{field}") from None
    return curve.model_copy(update={"counts": counts, "interval_s": interval})


def _read(curve: ReplayCurve, base: Path) -> tuple[list[float], float]:
    if curve.prometheus is not None:
        return prometheus_counts(curve.prometheus), curve.prometheus.step_s
    name = curve.csv or curve.access_log or ""
    path = (base / name).expanduser()
    if not path.is_file():
        raise UserError("file not found", source=str(path))
    if curve.csv is not None:
        return csv_counts(path, curve.interval_s)
    return log_counts(path, curve.log_format, curve.interval_s)


def read_source(path: Path) -> str:
    """A source file's text (bounded; ``.gz`` decompressed, bounded too)."""
    raw = read_bytes(path, MAX_SOURCE_BYTES)
    if path.suffix == ".gz":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
                raw = fh.read(MAX_SOURCE_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise UserError(f"not a gzip file: {exc}", source=str(path)) from None
        if len(raw) > MAX_SOURCE_BYTES:
            raise UserError(f"over {MAX_SOURCE_BYTES:,} bytes uncompressed", source=str(path))
    return decode_text(raw, str(path))


def csv_counts(path: Path, interval_s: float) -> tuple[list[float], float]:
    """Counts per ``interval_s`` from a counts or timestamps CSV (module docstring)."""
    rows = [
        (n, row)
        for n, line in enumerate(read_source(path).splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
        for row in csv.reader([line])
    ]
    if not rows:
        raise UserError("empty: no counts or timestamps", source=str(path))
    header = [c.strip().lower() for c in rows[0][1]]
    if "count" in header:
        col = header.index("count")
        return [_number(r, col, path, n) for n, r in rows[1:]], interval_s
    if "timestamp" in header:
        col = header.index("timestamp")
        stamps = [_stamp(_cell(r, col, path, n), path, n) for n, r in rows[1:]]
        return binned(stamps, interval_s, str(path)), interval_s
    if len(header) == 1:
        return [_number(r, 0, path, n) for n, r in rows], interval_s
    raise UserError(
        "no column headed count or timestamp", source=str(path), field=f"line {rows[0][0]}"
    )


def _cell(row: list[str], col: int, path: Path, line: int) -> str:
    if col >= len(row):
        raise UserError("missing column", source=str(path), field=f"line {line}")
    return row[col].strip()


def _number(row: list[str], col: int, path: Path, line: int) -> float:
    text = _cell(row, col, path, line)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise UserError(
            f"not a count: {text[:40]!r} (a number >= 0)", source=str(path), field=f"line {line}"
        )
    return value


def _epoch(text: str) -> float | None:
    """Epoch seconds of ``text`` (epoch seconds or RFC 3339, UTC when it names no zone)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _stamp(text: str, path: Path, line: int) -> float:
    value = _epoch(text)
    if value is None:
        raise UserError(
            f"not a timestamp: {text[:40]!r} (RFC 3339 or epoch seconds)",
            source=str(path),
            field=f"line {line}",
        )
    return value


def binned(stamps: list[float], interval_s: float, source: str) -> list[float]:
    """Logins per ``interval_s`` from the first one's time on."""
    if not stamps:
        raise UserError("no logins in it", source=source)
    first = min(stamps)
    bins = int((max(stamps) - first) // interval_s) + 1
    if bins > MAX_SEGMENTS:
        raise UserError(f"{bins:,} intervals: at most {MAX_SEGMENTS:,}", source=source)
    counts = [0.0] * bins
    for t in stamps:
        counts[int((t - first) // interval_s)] += 1
    return counts


def log_counts(path: Path, fmt: str, interval_s: float) -> tuple[list[float], float]:
    """Logins per ``interval_s`` from an nginx (combined) or ALB access log."""
    pattern = NGINX_LINE if fmt == "nginx" else ALB_LINE
    stamps = []
    for number, line in enumerate(read_source(path).splitlines(), 1):
        m = pattern.search(line)
        if not m:
            continue
        try:
            if fmt == "nginx":
                t = datetime.strptime(m.group(1), NGINX_TIME).timestamp()
            else:
                t = datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise UserError(
                f"not a {fmt} time: {m.group(1)[:40]!r}", source=str(path), field=f"line {number}"
            ) from None
        stamps.append(t)
    if not stamps:
        raise UserError(f"no POST /api/v4/users/login lines ({fmt} format)", source=str(path))
    return binned(stamps, interval_s, str(path)), interval_s


def prometheus_counts(src: PromSource) -> list[float]:
    """Logins per step from a range query, the series summed (a missing point counts 0)."""
    start, end = _prom_time(src.start, "start"), _prom_time(src.end, "end")
    if end <= start:
        raise UserError("end must be after start")
    steps = int((end - start) // src.step_s) + 1
    if steps > 11_000:  # Prometheus refuses more points per series
        raise UserError(f"{steps:,} points: at most 11,000 (a longer step_s)")
    params = {"query": src.query, "start": start, "end": end, "step": src.step_s}
    url = f"{src.url.rstrip('/')}/api/v1/query_range?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=PROM_TIMEOUT_S) as resp:
            body = json.loads(resp.read(64 << 20))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise UserError(f"{src.url}: query_range failed: {exc}") from None
    if not isinstance(body, dict) or body.get("status") != "success":
        raise UserError(f"{src.url}: query_range failed: {str(body)[:200]}")
    counts = [0.0] * steps
    for series in body.get("data", {}).get("result", []):
        for ts, value in series.get("values", []):
            i, v = round((float(ts) - start) / src.step_s), float(value)
            if 0 <= i < steps and math.isfinite(v):
                counts[i] += max(0.0, v) * (src.step_s if src.values == "rate" else 1)
    return counts


def _prom_time(text: str, field: str) -> float:
    value = _epoch(text)
    if value is None:
        raise UserError(f"{field}: not RFC 3339 or epoch seconds: {text[:40]!r}")
    return value
