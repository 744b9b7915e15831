"""The garbage collector while users run: no full collections in the users' loop.

A full (generation 2) collection scans every tracked object of the process and stops every
greenlet while it does: with the 11.x web app's state per user it took 20 ms at 50,000 objects
and 230 ms at 260,000 (600 users arriving), and it comes back at every 25 % of heap growth —
that is, all through a storm's arrivals, late by its pause. Cyclic garbage is rare in a running
load (those collections found 0 to 30 objects each; refcounting frees the rest at once), so while
users run the process keeps its young collections, freezes what exists at the start (imports,
Locust, the plan) out of every scan, and defers the full ones to the end of the run.
"""

from __future__ import annotations

import gc

NEVER = 2**31 - 1  # a generation-2 threshold no run reaches
_saved: tuple[int, int, int] | None = None


def hold_full_collections() -> None:
    """From now on: young collections only; what exists now is frozen out of them."""
    global _saved
    if _saved is not None:
        return
    _saved = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(_saved[0], _saved[1], NEVER)


def release_full_collections() -> int:
    """Back to the default policy; the objects the deferred full collection found."""
    global _saved
    if _saved is None:
        return 0
    gc.set_threshold(*_saved)
    _saved = None
    gc.unfreeze()
    return gc.collect()
