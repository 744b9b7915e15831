"""While users run, the users' process makes no full garbage collection (mmload.load.gcpolicy):
counted with gc.callbacks while the heap grows by long-lived objects, as a storm's users grow it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from mmload.load import gcpolicy


@pytest.fixture
def full_collections() -> Iterator[list[int]]:
    """Generation-2 collections seen while the test runs."""
    seen: list[int] = []

    def callback(phase: str, info: dict) -> None:
        if phase == "stop" and info["generation"] == 2:
            seen.append(info["collected"])

    gc.callbacks.append(callback)
    try:
        yield seen
    finally:
        gc.callbacks.remove(callback)
        gcpolicy.release_full_collections()


def _grow_heap(objects: int) -> list[dict]:
    """Long-lived containers, as users' sessions are: the kind that triggers full collections."""
    return [{"user": i, "channels": [i, i + 1]} for i in range(objects)]


def test_by_default_a_growing_heap_triggers_full_collections(full_collections: list[int]) -> None:
    kept = _grow_heap(400_000)
    assert full_collections, "the default policy made no full collection: the test cannot tell"
    del kept


def test_while_users_run_no_full_collection_and_the_deferred_one_at_the_end(
    full_collections: list[int],
) -> None:
    gcpolicy.hold_full_collections()
    full_collections.clear()  # the policy's own collection at the start is allowed
    kept = _grow_heap(400_000)
    cycle: list = []
    cycle.append(cycle)  # cyclic garbage that only a full collection frees
    del cycle
    assert full_collections == []
    assert gc.get_threshold()[2] == gcpolicy.NEVER
    del kept
    found = gcpolicy.release_full_collections()
    assert found >= 1 and gc.get_freeze_count() == 0
    assert gc.get_threshold()[2] != gcpolicy.NEVER
