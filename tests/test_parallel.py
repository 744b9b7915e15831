"""The suite's own runner (tests/parallel.py, `make test`): what it groups, what it keeps apart."""

from __future__ import annotations

from pathlib import Path

from tests import parallel


def test_named_modules_exist() -> None:
    """A renamed module would silently lose its grouping."""
    modules = set(parallel.discover_modules())
    assert set(parallel.THIS_MACHINE) <= modules
    assert modules >= parallel.TIMING


def test_this_machines_modules_run_in_one_job_and_every_module_once(tmp_path: Path) -> None:
    modules = parallel.discover_modules()
    jobs = parallel.plan_jobs(modules, {}, tmp_path)
    planned = [m for j in jobs for m in j.modules]
    assert sorted(planned) == sorted(modules)
    together = [j for j in jobs if set(j.modules) & set(parallel.THIS_MACHINE)]
    assert len(together) == 1 and set(together[0].modules) == set(parallel.THIS_MACHINE)


def test_longest_first_and_never_two_timing_jobs(tmp_path: Path) -> None:
    timing = sorted(parallel.TIMING)[:2]
    durations = {timing[0]: 300.0, timing[1]: 200.0, "tests/test_cli.py": 100.0}
    jobs = parallel.plan_jobs([*timing, "tests/test_cli.py"], durations, tmp_path)
    assert [j.expected_s for j in jobs] == [300.0, 200.0, 100.0]
    first = parallel.next_job(jobs, [])
    assert first is jobs[0]
    # with one timing job running, the next one to start is the plain module, not the timing one
    assert parallel.next_job(jobs[1:], [first]) is jobs[2]
    assert parallel.next_job([jobs[1]], [first]) is None


def test_the_timing_lane_starts_first_even_behind_longer_modules(tmp_path: Path) -> None:
    """The timing jobs run one at a time: their lane is the critical path, so a free slot goes
    to the next timing job before any longer plain module."""
    timing = sorted(parallel.TIMING)[:2]
    plain = ["tests/test_cli.py", "tests/test_layers.py"]
    durations = {plain[0]: 400.0, plain[1]: 350.0, timing[0]: 100.0, timing[1]: 90.0}
    jobs = parallel.plan_jobs([*timing, *plain], durations, tmp_path)
    first = parallel.next_job(jobs, [])
    assert first is not None and first.modules == [timing[0]]
    rest = [j for j in jobs if j is not first]
    second = parallel.next_job(rest, [first])
    assert second is not None and second.modules == [plain[0]]
    # once the first timing job ends, the next timing one goes before the waiting plain module
    waiting = [j for j in rest if j is not second]
    third = parallel.next_job(waiting, [second])
    assert third is not None and third.modules == [timing[1]]
