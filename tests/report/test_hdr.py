"""mmload/hdr.py against hdrh's own HdrHistogram: decoding, merging, percentiles, compaction."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from mmload import hdr


def random_histograms(n: int, seed: int = 1) -> list[HdrHistogram]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h = hdr.new_histogram()
        size = int(rng.integers(1, 2000)) if i % 5 else 0  # some empty ones
        values = np.exp(rng.normal(rng.uniform(0, 15), 2, size)).astype(np.int64) + 1
        for v in np.minimum(values, hdr.HIGHEST_US):
            h.record_value(int(v), int(rng.integers(1, 10**9)) if i % 7 == 0 else 1)
        out.append(h)
    return out


def test_decode_many_is_hdrhistograms_decode() -> None:
    hists = random_histograms(200)
    encoded = [hdr.encode(h) for h in hists]
    no, idx, cnt = hdr.decode_many(encoded)
    for i, e in enumerate(encoded):
        want = hdr.sparse_of(HdrHistogram.decode(e.encode("ascii")))
        sel = no == i
        assert np.array_equal(idx[sel], want.idx) and np.array_equal(cnt[sel], want.cnt), i
        one = hdr.decode_sparse(e)
        assert np.array_equal(one.idx, want.idx) and one.total == hists[i].get_total_count()


def test_merge_and_percentiles_are_hdrhistograms() -> None:
    hists = random_histograms(30, seed=2)
    merged = hdr.merge(hdr.decode_sparse(hdr.encode(h)) for h in hists)
    ref = hdr.merge_histograms(hists)
    got = hdr.percentiles_ms(merged, (50.0, 90.0, 99.0, 99.9))
    for p in (50.0, 90.0, 99.0, 99.9):
        assert got[f"p{p:g}_ms"] == ref.get_value_at_percentile(p) / 1000.0
    assert got["max_ms"] == ref.get_max_value() / 1000.0


def test_raw_values_read_like_recorded_ones() -> None:
    ms = np.exp(np.random.default_rng(3).normal(3, 2, 5000))
    h = hdr.new_histogram()
    for v in ms:
        h.record_value(min(hdr.value_us(float(v)), hdr.HIGHEST_US))
    a, b = hdr.sparse_of(h), hdr.of_values_ms(ms)
    assert np.array_equal(a.idx, b.idx) and np.array_equal(a.cnt, b.cnt)


@pytest.mark.parametrize(
    "bad", ["Z2FyYmFnZQ==", "not base64!", hdr.encode(hdr.new_histogram())[:-8]]
)
def test_damaged_histograms_raise_one_error_type(bad: str) -> None:
    with pytest.raises(hdr.HdrDecodeError):
        hdr.decode_many([bad])


def test_compact_merges_flushes_exactly(tmp_path: Path) -> None:
    hists = random_histograms(6, seed=4)
    lines = [hdr.line_of(1_800_000_000, "GET /x", "w0", hdr.SERVICE, h) for h in hists]
    torn = lines[-1][:40]  # a crash mid-write leaves a torn last line
    hdr.path_of(tmp_path).write_text("\n".join([*lines, torn]) + "\n")
    hdr.compact(tmp_path)
    (only,) = list(hdr.iter_lines(tmp_path))
    assert only.count == sum(h.get_total_count() for h in hists)
    want = hdr.merge_histograms(hists)
    got = hdr.percentiles_ms(only.sparse())
    assert got["p99_ms"] == want.get_value_at_percentile(99) / 1000.0
    pcts = hdr.run_percentiles(tmp_path)
    assert pcts.endpoints["GET /x"]["count"] == only.count == pcts.overall["count"]


@pytest.mark.parametrize("seed", range(40))
def test_the_numpy_encoder_writes_hdrh_s_bytes(seed: int) -> None:
    """encode_sparse(of_values_us(v)) is byte for byte hdrh's encode() of record_value(v): runs
    of one empty bucket, long runs, the layout's extremes and counts past 32 bits included."""
    rng = random.Random(seed)
    n = rng.choice([1, 2, 3, 17, 500, 20_000])
    values = [int(rng.lognormvariate(rng.uniform(0, 16), 2.5)) for _ in range(n)]
    values += rng.sample([0, 1, 2, 3, 2047, 2048, hdr.HIGHEST_US, 10**13], k=seed % 4)
    reference = hdr.new_histogram()
    for v in values:
        reference.record_value(v)
    if seed % 5 == 0:
        reference.record_value(values[0], 2**40)
        values_sparse = hdr.sparse_of(reference)
    else:
        values_sparse = hdr.of_values_us(values)
        assert values_sparse.total == reference.get_total_count()
    assert hdr.encode_sparse(values_sparse) == hdr.encode(reference)
    assert hdr.decode_sparse(hdr.encode_sparse(values_sparse)).cnt.tolist() == (
        values_sparse.cnt.tolist()
    )


def test_the_numpy_encoder_of_nothing_is_an_empty_histogram() -> None:
    assert hdr.encode_sparse(hdr.EMPTY) == hdr.encode(hdr.new_histogram())
    assert hdr.of_values_us([]).total == 0 and hdr.of_values_us([10**13]).total == 0
