"""The run record's disk space: the check before a run, and the reserve for its last run.json.

:func:`estimate_bytes` is the record a scenario writes at most, from its expected rows
(users x the rows each makes over the run's length) x the measured bytes a row takes on disk.
:func:`check_free_space` warns when the free space of the output folder is below
``WARN_MARGIN`` x that, and refuses the run (exit 2) when it is below ``REFUSE_FRACTION`` x that.

:class:`Reserve` holds ``RESERVE_BYTES`` in the run directory while the run goes on and gives
them back just before the final run.json is written: a run that filled the disk can still say
that it failed, and why.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mmload.config.scenario import Scenario
from mmload.errors import UserError

# Bytes on disk per request row at the peak of a run: its parquet part, its share of hdr.jsonl
# and, while the parts are merged at the end, its second copy in requests.parquet (Locust's CSVs
# aside). Measured on 200-user runs against `mmload sim` (a storm and a steady run with the
# action mix, sizes of the run directory polled every 50 ms): 50-52 bytes; 80 leaves a margin.
# tests/load/test_disk_full.py::test_the_estimate_bounds_a_real_record measures a real record
# on a tmpfs again and fails when it outgrows the estimate.
BYTES_PER_ROW = 80
LOGIN_ROWS = 40  # requests per user at its arrival: the same runs measured 28 (login, load, WS)
ACTION_ROWS = 2  # requests per action of the mix: the steady run measured 1.4
POLL_ROWS_PER_S = 4 / 60  # the web app's 60 s polls
CSV_BYTES_PER_S = 16_000  # locust_stats_history.csv, a row per endpoint each second: 5.5 KB/s
FLUSH_S = 2.0  # a part per table per process every flush (the plan's flush_s)
BLOCK_BYTES = 4096  # the least a file takes on disk (a filesystem block, a tmpfs page)
RESERVE_BYTES = 512 << 10  # twice the final run.json of a long run (tmp + the old one)
WARN_MARGIN = 1.5
REFUSE_FRACTION = 0.5


def expected_rows(scenario: Scenario, users: int, duration_s: float) -> int:
    """Request rows ``users`` make in ``duration_s`` seconds of ``scenario``."""
    per_s = POLL_ROWS_PER_S
    if scenario.actions:
        per_s += ACTION_ROWS / (scenario.idle.avg_ms / 1000)
    return int(users * (LOGIN_ROWS + duration_s * per_s))


def estimate_bytes(scenario: Scenario, users: int, duration_s: float, processes: int = 1) -> int:
    """The most disk the record of such a run takes (see the module docstring): its rows, the
    blocks its part files start, Locust's CSV history and the reserve."""
    rows = expected_rows(scenario, users, duration_s)
    parts = 2 * processes * (int(duration_s / FLUSH_S) + 2)
    csv = int(duration_s * CSV_BYTES_PER_S)
    return rows * BYTES_PER_ROW + parts * BLOCK_BYTES + csv + RESERVE_BYTES


def _size(n: float) -> str:
    return f"{n / (1 << 20):,.1f} MiB"


def check_free_space(out: Path, need: int, free: int | None = None) -> str | None:
    """A warning when ``out`` has less than ``WARN_MARGIN`` x ``need`` bytes free (None: enough);
    a UserError naming ``--out`` when it has less than ``REFUSE_FRACTION`` x ``need``."""
    if free is None:
        free = shutil.disk_usage(_existing(out)).free
    what = f"{_size(free)} free in {out}, the run record needs about {_size(need)}"
    if free < need * REFUSE_FRACTION:
        raise UserError(f"not enough disk space: {what}", source="command line", field="--out")
    if free < need * WARN_MARGIN:
        return f"low disk space: {what}; the run fails if the disk fills up"
    return None


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (``--out`` is created by the run)."""
    path = path.absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


@dataclass
class Reserve:
    """``size`` bytes held at ``path`` until :meth:`release`."""

    path: Path
    size: int = RESERVE_BYTES

    def hold(self) -> None:
        """Allocate the bytes (an OSError when the disk has not even those)."""
        with self.path.open("wb") as fh:
            fh.write(b"\0" * self.size)
            fh.flush()
            os.fsync(fh.fileno())

    def release(self) -> None:
        """Give the bytes back (again: nothing)."""
        self.path.unlink(missing_ok=True)
