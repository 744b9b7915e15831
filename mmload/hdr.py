"""HDR latency histograms: the one place that writes, reads, merges and reads percentiles.

Every percentile mmload prints (the run summary, the live view, the report, compare, the ceiling)
comes from these histograms. A run record's ``hdr.jsonl`` (see docs/run-record.md) holds one JSON
object per line::

    {"window_start": 1732700000, "name": "GET /api/v4/users/me", "worker": "w0",
     "kind": "service", "count": 812, "hist": "HISTFAAAA..."}

``hist`` is HdrHistogram's V2 wire encoding (base64) of microseconds, 1 µs .. 1 h, 3 significant
digits; ``kind`` is ``service`` (service time) or ``corrected`` (from the scheduled start: no
coordinated omission). :func:`line` is the only writer of that format, :func:`iter_lines` the only
reader.

For reading many histograms fast, a histogram is kept *sparse* (the indices and counts of its
non-empty buckets, :class:`Sparse`): :func:`decode_many` checks each wire encoding's headers,
decodes its counts with hdrh's C decoder into one reused buffer and keeps only the non-empty
buckets, without building an HdrHistogram object per line. Merging is the exact sum of
the counts of every bucket; a percentile is read exactly as ``HdrHistogram.get_value_at_percentile``
does: the highest value equivalent to the first bucket whose cumulative count reaches
``int(p * total / 100 + 0.5)``.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from hdrh.histogram import HdrHistogram
from pyhdrh import decode as _c_decode  # hdrh's C varint decoder (ships with hdrhistogram)

from mmload import record
from mmload.files import replace_via

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
DIGITS = 3
SERVICE = "service"
CORRECTED = "corrected"
PERCENTILES = (50.0, 90.0, 95.0, 99.0)

# HdrHistogram's V2 wire format (hdrh.codec): an 8-byte external header (cookie, length), then
# zlib of a 40-byte payload header followed by ZigZag LEB128 counts (negative = run of zeros).
_V2_COMPRESSION_COOKIE = 0x1C849304
_V2_ENCODING_COOKIE = 0x1C849303
_EXT_HEADER = struct.Struct(">II")
_PAYLOAD_HEADER = struct.Struct(">IIIIqqd")


class HdrDecodeError(ValueError):
    """A histogram in hdr.jsonl is not a valid encoding of mmload's layout."""


def new_histogram() -> HdrHistogram:
    """An empty latency histogram in microseconds (1 µs .. 1 h, 3 significant digits)."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


@cache
def _layout() -> HdrHistogram:
    """One empty histogram, read for the layout's constants only (never recorded into)."""
    return new_histogram()


def value_us(latency_ms: float) -> int:
    """The value recorded for a latency: whole microseconds, at least 1."""
    us = int(latency_ms * 1000)
    return us if us > 0 else 1


def encode(hist: HdrHistogram) -> str:
    """The wire encoding (base64 text) of a histogram."""
    return hist.encode().decode("ascii")


def line(
    window_start: int, name: str, worker: str, kind: str, hist: HdrHistogram | str, count: int
) -> str:
    """One hdr.jsonl line (no newline); ``hist`` is a histogram or its :func:`encode` text."""
    encoded = hist if isinstance(hist, str) else encode(hist)
    return json.dumps(
        {
            "window_start": int(window_start),
            "name": name,
            "worker": worker,
            "kind": kind,
            "count": int(count),
            "hist": encoded,
        }
    )


def line_of(window_start: int, name: str, worker: str, kind: str, hist: HdrHistogram) -> str:
    """:func:`line` for a histogram object (its total count filled in)."""
    return line(window_start, name, worker, kind, hist, hist.get_total_count())


@dataclass(frozen=True)
class Line:
    """One parsed hdr.jsonl line; the histogram stays encoded until asked for."""

    window_start: int
    name: str
    worker: str
    kind: str
    count: int
    encoded: str

    def histogram(self) -> HdrHistogram:
        """The decoded HdrHistogram."""
        try:
            return HdrHistogram.decode(self.encoded.encode("ascii"))
        except Exception as exc:  # hdrh raises its own exceptions, TypeError, zlib.error…
            raise HdrDecodeError(f"histogram of {self.name!r}: {exc}") from None

    def sparse(self) -> Sparse:
        """The non-empty buckets (fast path, no dense array)."""
        return decode_sparse(self.encoded)


def path_of(run_dir: str | Path) -> Path:
    """Where a run record keeps its histograms."""
    return Path(run_dir) / record.HDR_FILE


def parse_line(text: str) -> Line | None:
    """A line of hdr.jsonl, or None for a torn one (a crash mid-write leaves at most one)."""
    try:
        rec = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(rec, dict):
        raise HdrDecodeError("a line of hdr.jsonl is not a JSON object")
    try:
        return Line(
            int(rec["window_start"]),
            str(rec["name"]),
            str(rec.get("worker", "")),
            str(rec.get("kind", SERVICE)),
            int(rec.get("count", 0)),
            str(rec["hist"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise HdrDecodeError(f"a line of hdr.jsonl lacks or mangles {exc}") from None


def iter_lines(run_dir: str | Path) -> Iterator[Line]:
    """Every line of a run's hdr.jsonl (none when the file is absent); torn lines are skipped."""
    path = path_of(run_dir)
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for text in fh:
            parsed = parse_line(text)
            if parsed is not None:
                yield parsed


def merge_histograms(hists: Iterable[HdrHistogram]) -> HdrHistogram:
    """Exact merge of HdrHistogram objects: the sum of the counts of every bucket."""
    total = new_histogram()
    for h in hists:
        total.add(h)
    return total


def compact(run_dir: str | Path) -> None:
    """Rewrite hdr.jsonl with one line per (window_start, name, worker, kind), in window order.

    While a run goes on, every flush appends its own lines (deltas); merging them is exact.
    """
    path = path_of(run_dir)
    if not path.exists():
        return
    groups: dict[tuple[int, str, str, str], list[Line]] = defaultdict(list)
    for ln in iter_lines(run_dir):
        groups[(ln.window_start, ln.name, ln.worker, ln.kind)].append(ln)

    def merged(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8") as out:
            for key in sorted(groups):
                parts = groups[key]
                if len(parts) == 1:
                    out.write(line(*key, parts[0].encoded, parts[0].count) + "\n")
                else:
                    out.write(line_of(*key, merge_histograms(p.histogram() for p in parts)) + "\n")

    replace_via(path.with_suffix(".tmp"), path, merged)  # failed (disk full): the lines stay


# ---------------------------------------------------------------- sparse arithmetic


@dataclass(frozen=True)
class Sparse:
    """The non-empty buckets of a histogram: sorted bucket indices and their counts."""

    idx: np.ndarray  # int64, sorted, unique
    cnt: np.ndarray  # int64

    @property
    def total(self) -> int:
        """Number of recorded values."""
        return int(self.cnt.sum())


EMPTY = Sparse(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


@cache
def bucket_values_us() -> tuple[np.ndarray, np.ndarray]:
    """For every bucket index of :func:`new_histogram`: (highest, lowest) equivalent value, µs.

    HdrHistogram's ``get_value_from_index`` and ``get_highest_equivalent_value``, vectorised.
    """
    h = new_histogram()
    i = np.arange(h.counts_len, dtype=np.int64)
    bucket = (i >> h.sub_bucket_half_count_magnitude) - 1
    sub = (i & (h.sub_bucket_half_count - 1)) + h.sub_bucket_half_count
    first = bucket < 0
    sub[first] -= h.sub_bucket_half_count
    bucket[first] = 0
    low = sub << (bucket + h.unit_magnitude)
    high = low + (np.int64(1) << (bucket + h.unit_magnitude)) - 1
    return high, low


def counts_len() -> int:
    """Number of buckets of mmload's layout."""
    return len(bucket_values_us()[0])


def sparse_of(hist: HdrHistogram) -> Sparse:
    """The non-empty buckets of a histogram object (which must use mmload's layout)."""
    if hist.counts_len != counts_len():
        raise HdrDecodeError("histogram layout differs from mmload.hdr.new_histogram()")
    if hist.get_total_count() == 0:
        return EMPTY
    counts = np.ctypeslib.as_array(hist.counts)
    idx = np.flatnonzero(counts)
    return Sparse(idx.astype(np.int64), counts[idx].astype(np.int64))


def _counts_payload(encoded: str | bytes) -> bytes:
    """The ZigZag LEB128 counts of one encoded histogram, after checking its headers."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HdrDecodeError(f"not an HdrHistogram encoding: {exc}") from None
    if len(raw) < _EXT_HEADER.size:
        raise HdrDecodeError("histogram too short")
    cookie, length = _EXT_HEADER.unpack_from(raw)
    if cookie & ~0xF0 != _V2_COMPRESSION_COOKIE or length != len(raw) - _EXT_HEADER.size:
        raise HdrDecodeError("not an HdrHistogram V2 encoding")
    try:
        payload = zlib.decompress(raw[_EXT_HEADER.size :])
    except zlib.error as exc:
        raise HdrDecodeError(f"histogram does not decompress: {exc}") from None
    if len(payload) < _PAYLOAD_HEADER.size:
        raise HdrDecodeError("histogram payload too short")
    pcookie, plen, offset, digits, lowest, highest, _ratio = _PAYLOAD_HEADER.unpack_from(payload)
    if pcookie & ~0xF0 != _V2_ENCODING_COOKIE:
        raise HdrDecodeError("histogram payload has an invalid cookie")
    if (lowest, highest, digits, offset) != (LOWEST_US, HIGHEST_US, DIGITS, 0):
        raise HdrDecodeError("histogram layout differs from mmload.hdr.new_histogram()")
    if len(payload) - _PAYLOAD_HEADER.size < plen:
        raise HdrDecodeError("histogram payload truncated")
    return payload[: _PAYLOAD_HEADER.size + plen]


def decode_many(encoded: Sequence[str | bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every non-empty bucket of many encoded histograms: (histogram #, bucket, count).

    Each histogram's varint counts are decoded by hdrh's own C decoder into one reused dense
    buffer, of which only the non-empty buckets are kept (and cleared again).
    """
    buf = np.zeros(counts_len(), dtype=np.int64)
    addr = buf.ctypes.data
    nos, idxs, cnts = [], [], []
    for i, e in enumerate(encoded):
        payload = _counts_payload(e)
        try:
            got = _c_decode(payload, _PAYLOAD_HEADER.size, addr, len(buf), 8)
        except Exception as exc:  # the C decoder raises ValueError / OverflowError…
            raise HdrDecodeError(f"histogram counts do not decode: {exc}") from None
        lo, hi = got["min_nonzero_index"], got["max_nonzero_index"]
        if got["total"] <= 0 or hi < lo:
            continue
        nz = np.flatnonzero(buf[lo : hi + 1]) + lo
        nos.append(np.full(nz.size, i, dtype=np.int64))
        idxs.append(nz)
        cnts.append(buf[nz].copy())
        buf[nz] = 0
    if not idxs:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(nos), np.concatenate(idxs), np.concatenate(cnts)


def decode_sparse(encoded: str | bytes) -> Sparse:
    """The non-empty buckets of one encoded histogram, straight from the wire format.

    The same result as ``sparse_of(HdrHistogram.decode(encoded))`` (tests check it), faster;
    the layout must be mmload's (1 µs .. 1 h, 3 digits).
    """
    _, idx, cnt = decode_many([encoded])
    return Sparse(idx, cnt) if idx.size else EMPTY


def bucket_index(values_us: np.ndarray) -> np.ndarray:
    """Vectorised ``HdrHistogram._counts_index_for`` for mmload's layout (values clamped to it)."""
    return _index_of(np.clip(np.asarray(values_us, dtype=np.int64), LOWEST_US, HIGHEST_US))


def _index_of(v: np.ndarray) -> np.ndarray:
    """``HdrHistogram._counts_index_for`` of non-negative int64 values, unclamped."""
    h = _layout()
    _, bit_length = np.frexp((v | h.sub_bucket_mask).astype(np.float64))
    bucket = (
        bit_length.astype(np.int64) - h.unit_magnitude - (h.sub_bucket_half_count_magnitude + 1)
    )
    sub = v >> (bucket + h.unit_magnitude)
    return ((bucket + 1) << h.sub_bucket_half_count_magnitude) + (sub - h.sub_bucket_half_count)


def of_values_us(values_us: Sequence[int] | np.ndarray) -> Sparse:
    """The histogram ``record_value`` of each whole-microsecond value builds (values outside
    the layout dropped as hdrh drops them)."""
    v = np.asarray(values_us, dtype=np.int64)
    v = v[v >= 0]
    if v.size == 0:
        return EMPTY
    idx = _index_of(v)
    idx, cnt = np.unique(idx[idx < counts_len()], return_counts=True)
    if idx.size == 0:
        return EMPTY
    return Sparse(idx.astype(np.int64), cnt.astype(np.int64))


_LEB128_STEPS = np.uint64(1) << (np.arange(1, 8, dtype=np.uint64) * np.uint64(7))
_LEB128_SHIFTS = np.arange(8, dtype=np.uint64) * np.uint64(7)


def _zigzag_leb128(values: np.ndarray) -> bytes:
    """ZigZag LEB128 of int64 values, vectorised (hdrh's varint encoding, for |v| < 2**55)."""
    if values.size and int(np.abs(values).max()) >= 1 << 55:
        raise ValueError("histogram count too large for the vectorised encoder")
    zz = ((values << 1) ^ (values >> 63)).astype(np.uint64)
    nbytes = 1 + (zz[:, None] >= _LEB128_STEPS[None, :]).sum(axis=1)
    groups = ((zz[:, None] >> _LEB128_SHIFTS[None, :]) & np.uint64(0x7F)).astype(np.uint8)
    cols = np.arange(8)[None, :]
    groups[cols < nbytes[:, None] - 1] |= 0x80  # the continuation bit on all but the last
    return groups[cols < nbytes[:, None]].tobytes()


@cache
def _headers() -> tuple[int, tuple[int, int, int, int, int, float]]:
    """What hdrh writes for mmload's layout: the compression cookie, and the payload header's
    fields but its length (cookie, offset, digits, lowest, highest, conversion ratio)."""
    h = new_histogram()
    h.record_value(LOWEST_US)
    raw = base64.b64decode(h.encode())
    compression_cookie = _EXT_HEADER.unpack_from(raw)[0]
    cookie, _, *rest = _PAYLOAD_HEADER.unpack_from(zlib.decompress(raw[_EXT_HEADER.size :]))
    return compression_cookie, (cookie, *rest)


def encode_sparse(s: Sparse) -> str:
    """The wire encoding of a sparse histogram: byte for byte what ``HdrHistogram.encode`` gives
    for the same counts (tests check it), without a dense array or hdrh's per-call ctypes.

    Counts run from index 0 to the last non-empty bucket; a run of ``g`` empty buckets is the
    token ``-g`` (as hdrh's encoder writes it, a single empty bucket included).
    """
    if s.total == 0:
        return encode(new_histogram())
    gaps = np.diff(s.idx, prepend=-1) - 1
    tokens = np.empty(2 * s.idx.size, dtype=np.int64)
    tokens[0::2] = -gaps
    tokens[1::2] = s.cnt
    tokens = tokens[(np.arange(tokens.size) % 2 == 1) | (tokens != 0)]  # no empty zero runs
    varints = _zigzag_leb128(tokens)
    compression_cookie, (cookie, *fields) = _headers()
    payload = _PAYLOAD_HEADER.pack(cookie, len(varints), *fields)
    compressed = zlib.compress(payload + varints)
    raw = _EXT_HEADER.pack(compression_cookie, len(compressed)) + compressed
    return base64.b64encode(raw).decode("ascii")


def of_values_ms(values_ms: Iterable[float] | np.ndarray) -> Sparse:
    """The histogram of raw millisecond values, recorded as :func:`value_us` records them.

    For figures that have no histogram in the record (arrival lag, time to logged in), so that
    they are read with the same percentile rule as every latency.
    """
    ms = np.asarray(values_ms, dtype=np.float64)
    ms = ms[np.isfinite(ms)]
    if ms.size == 0:
        return EMPTY
    us = np.maximum((ms * 1000).astype(np.int64), 1)
    idx, cnt = np.unique(bucket_index(us), return_counts=True)
    return Sparse(idx.astype(np.int64), cnt.astype(np.int64))


def merge(parts: Iterable[Sparse]) -> Sparse:
    """Exact merge: the sum of the counts of every bucket."""
    parts = [p for p in parts if len(p.idx)]
    if not parts:
        return EMPTY
    if len(parts) == 1:
        return parts[0]
    idx = np.concatenate([p.idx for p in parts])
    cnt = np.concatenate([p.cnt for p in parts])
    # a dense sum over every bucket (float64 holds counts exactly up to 2**53), then sparse again
    dense = np.bincount(idx, weights=cnt, minlength=counts_len())
    nz = np.flatnonzero(dense)
    return Sparse(nz.astype(np.int64), dense[nz].astype(np.int64))


def percentiles_ms(s: Sparse, ps: Sequence[float] = PERCENTILES) -> dict[str, float | None]:
    """``p50_ms``… and ``max_ms`` of a sparse histogram (None when empty), in milliseconds."""
    keys = [f"p{p:g}_ms" for p in ps] + ["max_ms"]
    total = s.total
    if total == 0:
        return dict.fromkeys(keys)
    high, _ = bucket_values_us()
    cum = np.cumsum(s.cnt)
    out: dict[str, float | None] = {}
    for p, key in zip(ps, keys, strict=False):
        target = max(int(min(p, 100.0) * total / 100 + 0.5), 1)
        out[key] = float(high[s.idx[np.searchsorted(cum, target)]]) / 1000.0
    out["max_ms"] = float(high[s.idx[-1]]) / 1000.0
    return out


# ---------------------------------------------------------------- a run's histograms


@dataclass
class RunHistograms:
    """A run's hdr.jsonl merged over workers and flushes, per endpoint and per 10 s window."""

    by_name: dict[tuple[str, str], Sparse] = field(default_factory=dict)  # (kind, name)
    by_window_name: dict[tuple[str, int, str], Sparse] = field(default_factory=dict)
    lines: int = 0

    def names(self, kind: str = SERVICE) -> list[str]:
        """Endpoint names with a histogram of ``kind``, sorted."""
        return sorted(n for k, n in self.by_name if k == kind)

    def endpoint(self, name: str, kind: str = SERVICE) -> Sparse:
        """The whole run's histogram of one endpoint (EMPTY when none)."""
        return self.by_name.get((kind, name), EMPTY)

    def overall(self, kind: str = SERVICE, exclude: Iterable[str] = ()) -> Sparse:
        """Every endpoint of ``kind`` merged, but those in ``exclude``."""
        skip = set(exclude)
        return merge(s for (k, n), s in self.by_name.items() if k == kind and n not in skip)

    def windows(self, kind: str = SERVICE) -> list[int]:
        """Window starts (epoch s) with a histogram of ``kind``, sorted."""
        return sorted({w for k, w, _ in self.by_window_name if k == kind})

    def window(self, window_start: int, name: str, kind: str = SERVICE) -> Sparse:
        """One endpoint's histogram in one window."""
        return self.by_window_name.get((kind, window_start, name), EMPTY)

    def window_overall(self) -> dict[int, Sparse]:
        """Per window, every endpoint's service time merged."""
        per: dict[int, list[Sparse]] = defaultdict(list)
        for (k, w, _), s in self.by_window_name.items():
            if k == SERVICE:
                per[w].append(s)
        return {w: merge(v) for w, v in per.items()}


READ_CHUNK = 256  # histograms decoded per vectorised pass (bounds the temporary arrays)


def _merge_arrays(idx: list[np.ndarray], cnt: list[np.ndarray]) -> Sparse:
    """Exact merge of raw (bucket, count) arrays: a dense bincount, then sparse again."""
    if len(idx) == 1:
        return Sparse(idx[0], cnt[0]) if idx[0].size else EMPTY
    dense = np.bincount(np.concatenate(idx), weights=np.concatenate(cnt), minlength=counts_len())
    nz = np.flatnonzero(dense)
    return Sparse(nz.astype(np.int64), dense[nz].astype(np.int64)) if nz.size else EMPTY


def read_run(run_dir: str | Path) -> RunHistograms:
    """Read and merge a run's hdr.jsonl once (raises HdrDecodeError on a damaged histogram).

    Histograms are decoded a chunk at a time and folded into one sparse histogram per
    (kind, window, name) as they come, so memory grows with the run's distinct buckets, not
    with its number of lines.
    """
    acc: dict[tuple[str, int, str], Sparse] = {}
    chunk: list[Line] = []
    out = RunHistograms()

    def fold() -> None:
        hist_no, idx, cnt = decode_many([ln.encoded for ln in chunk])
        cuts = np.searchsorted(hist_no, np.arange(len(chunk) + 1))
        members: dict[tuple[str, int, str], list[int]] = defaultdict(list)
        for i, ln in enumerate(chunk):
            members[(ln.kind, ln.window_start, ln.name)].append(i)
        for key, rows in members.items():
            parts_i = [idx[cuts[i] : cuts[i + 1]] for i in rows]
            parts_c = [cnt[cuts[i] : cuts[i + 1]] for i in rows]
            if key in acc:
                parts_i.append(acc[key].idx)
                parts_c.append(acc[key].cnt)
            acc[key] = _merge_arrays(parts_i, parts_c)
        chunk.clear()

    for ln in iter_lines(run_dir):
        out.lines += 1
        chunk.append(ln)
        if len(chunk) >= READ_CHUNK:
            fold()
    if chunk:
        fold()
    out.by_window_name = acc
    per_name: dict[tuple[str, str], list[Sparse]] = defaultdict(list)
    for (kind, _w, name), sp in acc.items():
        per_name[(kind, name)].append(sp)
    out.by_name = {k: merge(v) for k, v in per_name.items()}
    return out


@dataclass
class RunPercentiles:
    """Percentiles (ms) of a run: per endpoint, overall, and corrected where recorded."""

    endpoints: dict[str, dict[str, float | int | None]]  # name -> count, p50_ms … max_ms
    corrected: dict[str, dict[str, float | int | None]]  # the same from the corrected kind
    overall: dict[str, float | int | None]  # every endpoint but the excluded ones


def _stats(s: Sparse) -> dict[str, float | int | None]:
    return {"count": s.total, **percentiles_ms(s)}


def run_percentiles(run_dir: str | Path, exclude: Iterable[str] = ()) -> RunPercentiles:
    """The percentiles of a finished (or running) record, from its HDR histograms only.

    ``exclude``: endpoint names left out of ``overall`` (e.g. an SLO's excluded WebSocket
    samples). This is what the engine's summary and the reporter both print.
    """
    h = read_run(run_dir)
    return percentiles_of(h, exclude)


def percentiles_of(h: RunHistograms, exclude: Iterable[str] = ()) -> RunPercentiles:
    """:func:`run_percentiles` of histograms already read."""
    return RunPercentiles(
        endpoints={n: _stats(h.endpoint(n)) for n in h.names(SERVICE)},
        corrected={n: _stats(h.endpoint(n, CORRECTED)) for n in h.names(CORRECTED)},
        overall=_stats(h.overall(SERVICE, exclude)),
    )
