"""Property: a mutated scenario, deployment or run record never gives a traceback or a hang.

Hypothesis takes valid files (the built-in scenarios, the deployment.yaml `mmload init`
writes, a synthetic run record's run.json), mutates them — a value anywhere replaced by a
hostile one (huge, infinite, NaN, boolean, negative, wrong type, a format pattern), a key
removed or added, bytes flipped or cut — and reads the result the way the commands do: loading
and applying run options to a scenario, resolving a deployment's sizing, building a record's
report. Each may succeed or raise a ``UserError``; anything else fails. Examples are bounded
and derandomized (the same ones in CI), with no deadline; each runs under a SIGALRM timeout.
"""

from __future__ import annotations

import json
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmload.config.deployment import load_deployment
from mmload.config.scenario import SCENARIO_DIR, RunOptions, apply_options, load_scenario
from mmload.errors import UserError
from mmload.load.plan import Plan
from mmload.load.schedule import arrival_schedule
from mmload.provision.init_file import deployment_yaml
from mmload.provision.sizing import resolve
from mmload.report.runs import build_run_report, summary_of
from tests.report.synth import Spec, make_record

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TIMEOUT_S = 60  # a hang guard: a case takes under a second (its first imports longer)

HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([0, -1, 1, 10**30, 2**63, 1e308, -1e308, 1e-9, 1e-300]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["{i}{0}", "u{i.real.x}", "{i:%}", "{i}", "", "-1", "1e20", "∞"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _set(doc: Any, path: tuple, value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` (JSON-like) with one to three structural mutations."""
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["replace", "delete", "add"]))
        if how == "add":
            target = doc
            for key in path:
                target = target[key]
            if isinstance(target, dict):
                target[draw(st.text(max_size=8))] = draw(HOSTILE)
                continue
        doc = _set(doc, path, draw(HOSTILE), delete=how == "delete")
    return doc


@st.composite
def damaged_text(draw: st.DrawFn, text: str) -> bytes:
    """``text`` as bytes with a byte-level change: flipped, cut, inserted or re-encoded."""
    raw = bytearray(text.encode("utf-8"))
    how = draw(st.sampled_from(["flip", "cut", "insert", "utf16"]))
    if how == "utf16":
        return text.encode("utf-16")
    pos = draw(st.integers(0, max(0, len(raw) - 1)))
    if how == "flip" and raw:
        raw[pos] = draw(st.integers(0, 255))
    elif how == "cut":
        del raw[pos:]
    else:
        raw[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    return bytes(raw)


class Hang(Exception):
    """An example ran longer than TIMEOUT_S."""


def within_timeout(fn: Any) -> None:
    """Run ``fn``; a UserError is fine, any other exception (or TIMEOUT_S) fails."""

    def alarm(*_: object) -> None:
        raise Hang(f"no answer within {TIMEOUT_S} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(TIMEOUT_S)
    try:
        fn()
    except UserError as exc:
        assert "\n" not in str(exc)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _write(path: Path, doc: Any | bytes) -> Path:
    if isinstance(doc, bytes):
        path.write_bytes(doc)
    else:
        path.write_text(json.dumps(doc, allow_nan=True) if path.suffix == ".json" else _yaml(doc))
    return path


def _yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True)


def use_scenario(path: Path) -> None:
    """What `mmload run` does with the file before any traffic, plus a plan's first names (the
    built-ins' replayed curves beside it)."""
    shutil.copytree(SCENARIO_DIR / "curves", path.parent / "curves", dirs_exist_ok=True)
    scenario, _ = load_scenario(str(path))
    scenario = apply_options(scenario, RunOptions(target="http://127.0.0.1:9", scale=0.5))
    plan = Plan.for_process(scenario, 1_800_000_000.0, 2, 0, "w0")
    for g in range(min(3, plan.schedule_users)):
        plan.username(g)
        plan.arrival_time(g)
    arrival_schedule(scenario).offset(0)


def use_deployment(path: Path) -> None:
    resolve(load_deployment(path))


BUILTIN = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(SCENARIO_DIR.glob("*.yaml"))}
DEPLOYMENT = yaml.safe_load(
    deployment_yaml(tier=2000, name="mm-prop", region="us-east-1", cidrs=["203.0.113.7/32"])
)


@pytest.fixture(scope="module")
def record_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_record(tmp_path_factory.mktemp("rec") / "run", Spec(rows=400, duration_s=20))


def test_the_unmutated_files_are_valid(tmp_path: Path, record_dir: Path) -> None:
    for name, doc in BUILTIN.items():
        use_scenario(_write(tmp_path / f"{name}.yaml", doc))
    use_deployment(_write(tmp_path / "deployment.yaml", DEPLOYMENT))
    summary_of(build_run_report(record_dir))


@SETTINGS
@given(data=st.data())
def test_mutated_scenarios(tmp_path: Path, data: st.DataObject) -> None:
    doc = BUILTIN[data.draw(st.sampled_from(sorted(BUILTIN)))]
    bad = data.draw(st.one_of(mutated(doc), damaged_text(_yaml(doc))))
    path = _write(tmp_path / "mutated.yaml", bad)
    within_timeout(lambda: use_scenario(path))


@SETTINGS
@given(data=st.data())
def test_mutated_deployments(tmp_path: Path, data: st.DataObject) -> None:
    bad = data.draw(st.one_of(mutated(DEPLOYMENT), damaged_text(_yaml(DEPLOYMENT))))
    path = _write(tmp_path / "deployment.yaml", bad)
    within_timeout(lambda: use_deployment(path))


@SETTINGS
@given(data=st.data())
def test_mutated_run_records(tmp_path: Path, record_dir: Path, data: st.DataObject) -> None:
    import shutil

    run = tmp_path / "run"
    if not run.exists():
        shutil.copytree(record_dir, run)
    meta = json.loads((record_dir / "run.json").read_text())
    bad = data.draw(st.one_of(mutated(meta), damaged_text(json.dumps(meta))))
    _write(run / "run.json", bad)
    within_timeout(lambda: summary_of(build_run_report(run)))
