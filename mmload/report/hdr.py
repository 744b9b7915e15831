"""Exact HDR histogram arithmetic with numpy: merge by summing bucket counts, read percentiles.

``record.iter_hdr`` decodes each hdr.jsonl line into an ``HdrHistogram``; a dense histogram
(1 µs .. 1 h, 3 digits) is 23,552 counters (184 KiB), so a run's thousands of lines are kept as
*sparse* histograms (bucket indices and counts of the non-empty buckets). Merging is the sum of
the counts of every bucket (as ``record.merge_histograms``); a percentile is read exactly as
``HdrHistogram.get_value_at_percentile`` does — the highest value equivalent to the first bucket
whose cumulative count reaches ``int(p * total / 100 + 0.5)`` — but vectorised.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from hdrh.histogram import HdrHistogram

from mmload import record

PERCENTILES = (50.0, 90.0, 95.0, 99.0)


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
    """For every bucket index of record.new_histogram(): (highest, lowest) equivalent value, µs."""
    h = record.new_histogram()
    low = np.array([h.get_value_from_index(i) for i in range(h.counts_len)], dtype=np.int64)
    high = np.array([h.get_highest_equivalent_value(v) for v in low.tolist()], dtype=np.int64)
    return high, low


def sparse_of(hist: HdrHistogram) -> Sparse:
    """The non-empty buckets of a decoded histogram (which must use record's layout)."""
    if hist.counts_len != len(bucket_values_us()[0]):
        raise ValueError("histogram layout differs from record.new_histogram()")
    if hist.get_total_count() == 0:
        return EMPTY
    counts = np.ctypeslib.as_array(hist.counts)
    # only the buckets between the lowest and highest recorded values can be non-empty
    lo = hist.get_counts_array_index(hist.get_min_value())
    hi = hist.get_counts_array_index(hist.max_value) + 1
    idx = np.flatnonzero(counts[lo:hi]) + lo
    cnt = counts[idx].astype(np.int64)
    if int(cnt.sum()) != hist.get_total_count():  # min/max not tracked: scan everything
        idx = np.flatnonzero(counts)
        cnt = counts[idx].astype(np.int64)
    return Sparse(idx.astype(np.int64), cnt)


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
    dense = np.bincount(idx, weights=cnt, minlength=len(bucket_values_us()[0]))
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


def to_histogram(s: Sparse) -> HdrHistogram:
    """A real HdrHistogram holding the same counts (for cross-checks and exports)."""
    h = record.new_histogram()
    _, low = bucket_values_us()
    for i, c in zip(s.idx.tolist(), s.cnt.tolist(), strict=True):
        h.record_value(int(low[i]), int(c))
    return h
