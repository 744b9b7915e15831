"""Bad input of every kind: exit 2, one line naming the file (or flag) and field, no traceback,
no hang.

One parametrized test runs the CLI in this process (click's CliRunner isolation around the
console entry point ``mmload.cli.main``, as the installed script runs it), each case under a
SIGALRM timeout so a hang fails the case instead of the suite. Every case fails before anything
touches the network: the target is a closed loopback port.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmload.cli import main
from tests.load.fakes import import_locust_unpatched

import_locust_unpatched()  # should a case reach the engine, Locust must not patch pytest

TARGET = ["--target", "http://127.0.0.1:9"]
TIMEOUT_S = 60  # a hang guard: a case takes under a second (its first imports longer)
SCENARIO = {"name": "bad", "kind": "storm", "users": 5, "arrival_s": 1, "hold_s": 1}


class Hang(Exception):
    """The case did not return within TIMEOUT_S."""


def run_inprocess(args: list[str]) -> tuple[int, str, str]:
    """``mmload ARGS`` in this process: exit code, stdout, stderr."""
    runner = CliRunner()

    def alarm(*_: object) -> None:
        raise Hang(f"mmload {' '.join(args)} hung for {TIMEOUT_S} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(TIMEOUT_S)
    try:
        with runner.isolation() as (out, err, *_):
            try:
                main(args)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            return code, out.getvalue().decode(), err.getvalue().decode()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _scenario(tmp: Path, **fields: object) -> str:
    p = tmp / "s.yaml"
    p.write_text(json.dumps({**SCENARIO, **fields}))
    return str(p)


def _text(tmp: Path, name: str, content: str | bytes) -> str:
    p = tmp / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    return str(p)


def _fifo(tmp: Path, name: str) -> str:
    p = tmp / name
    os.mkfifo(p)
    return str(p)


def _sparse(tmp: Path, name: str, size: int) -> str:
    """A file of ``size`` bytes that costs no disk (an 'endless' file as far as limits go)."""
    p = tmp / name
    with p.open("wb") as fh:
        fh.truncate(size)
    return str(p)


def _record(tmp: Path, run_json: str | bytes | None = None, *, fifo: bool = False) -> str:
    d = tmp / "rec"
    d.mkdir()
    if fifo:
        os.mkfifo(d / "run.json")
    elif run_json is None:
        (d / "run.json").mkdir()
    elif isinstance(run_json, bytes):
        (d / "run.json").write_bytes(run_json)
    else:
        (d / "run.json").write_text(run_json)
    return str(d)


DEEP_YAML = "a: " + "[" * 200 + "]" * 200 + "\n"
DEEP_JSON = '{"a":' * 100_000 + "1" + "}" * 100_000
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
DEPLOYMENT = "name: mm-bad\ntier: 2000\noperator_cidrs: [203.0.113.7/32]\n"

Case = Callable[[Path], list[str]]

# (id, args built in tmp_path, what the one line must say)
# fmt: off
CASES: list[tuple[str, Case, str]] = [
    # scenario files
    ("scenario-not-utf8", lambda t: ["run", _text(t, "s.yaml", b"name: \xff\xfe\n"), *TARGET],
     "not UTF-8 text"),
    ("scenario-utf16", lambda t: ["run", _text(t, "s.yaml", "name: x\n".encode("utf-16")), *TARGET],
     "not UTF-8 text (UTF-16"),
    ("scenario-nul", lambda t: ["run", _text(t, "s.yaml", b"name: x\x00\n"), *TARGET],
     "not UTF-8 text"),
    ("scenario-deep", lambda t: ["run", _text(t, "s.yaml", DEEP_YAML), *TARGET],
     "nested deeper than 64 levels"),
    ("scenario-alias-bomb", lambda t: ["run", _text(t, "s.yaml", BOMB), *TARGET],
     "aliases (*name) are not supported"),
    ("scenario-directory", lambda t: ["run", str(t), *TARGET], "is a directory"),
    ("scenario-fifo", lambda t: ["run", _fifo(t, "s.yaml"), *TARGET], "not a regular file"),
    ("scenario-device", lambda t: ["run", "/dev/zero", *TARGET], "not a regular file"),
    ("scenario-endless", lambda t: ["run", _sparse(t, "s.yaml", 9 << 20), *TARGET], "too large"),
    ("scenario-duplicate-key",
     lambda t: ["run", _text(t, "s.yaml", "name: a\nkind: storm\nusers: 3\nusers: 4\n"), *TARGET],
     "line 4, column 1: invalid YAML: duplicate key 'users'"),
    ("scenario-bool-users", lambda t: ["run", _scenario(t, users=True), *TARGET],
     "users: must be a number, not true/false"),
    ("scenario-huge-users", lambda t: ["run", _scenario(t, users=10**30), *TARGET],
     "users: must be between 1 and 1,000,000"),
    ("scenario-inf-arrival",
     lambda t: ["run", _text(t, "s.yaml", "name: a\nkind: storm\narrival_s: .inf\n"), *TARGET],
     "arrival_s: must be a finite number"),
    ("scenario-1e308", lambda t: ["run", _scenario(t, hold_s=1e308), *TARGET],
     "hold_s: must be a finite number at least 0 and at most 2,592,000"),
    ("scenario-tiny-backoff",
     lambda t: ["run", _scenario(t, kind="herd", websocket={"reconnect_min_s": 1e-9}), *TARGET],
     "websocket.reconnect_min_s: must be a finite number at least 0.1"),
    ("scenario-ceiling-step",
     lambda t: ["run", _scenario(t, kind="ceiling", ceiling={"step_users": 10**12}), *TARGET],
     "ceiling.step_users: must be between 1 and 1,000,000"),
    ("scenario-rate-cap", lambda t: ["run", _scenario(t, rate_cap=1e-300), *TARGET],
     "rate_cap: must be a finite number at least 0.01"),
    ("scenario-nan-weight",
     lambda t: ["run", _text(t, "s.yaml", "name: a\nkind: steady\naction_weights: {x: .nan}\n"),
                *TARGET], "action_weights.x"),
    ("scenario-pattern",
     lambda t: ["run", _scenario(t, population={"username_pattern": "u{i}-{0}"}), *TARGET],
     "population: username_pattern cannot be formatted"),
    ("scenario-pattern-attr",
     lambda t: ["run", _scenario(t, population={"username_pattern": "{i.real.x}{i}"}), *TARGET],
     "population: username_pattern cannot be formatted"),
    ("scenario-not-a-mapping", lambda t: ["run", _text(t, "s.yaml", "- 1\n"), *TARGET],
     "expected a mapping at the top level"),
    # flags of `mmload run`
    ("flag-users-huge", lambda t: ["run", _scenario(t), *TARGET, "--users", str(10**20)],
     "--users: must be between 1 and 1,000,000"),
    ("flag-users-float", lambda t: ["run", _scenario(t), *TARGET, "--users", "1e20"],
     "'--users'"),
    ("flag-duration-inf", lambda t: ["run", _scenario(t), *TARGET, "--duration", "inf"],
     "--duration: must be a finite number"),
    ("flag-duration-nan", lambda t: ["run", _scenario(t), *TARGET, "--duration", "nan"],
     "--duration: must be a finite number"),
    ("flag-scale-nan", lambda t: ["run", _scenario(t), *TARGET, "--scale", "nan"],
     "--scale: must be a finite number"),
    ("flag-scale-overflows-users",
     lambda t: ["run", _scenario(t, users=900_000), *TARGET, "--scale", "10"],
     "--scale: users becomes out of range"),
    ("flag-rate-cap-tiny", lambda t: ["run", _scenario(t), *TARGET, "--rate-cap", "1e-300"],
     "--rate-cap: must be a finite number"),
    # deployment files
    ("deployment-not-utf8", lambda t: ["infra", "render", "-c", _text(t, "d.yaml", b"\xff\n")],
     "not UTF-8 text"),
    ("deployment-utf16",
     lambda t: ["infra", "render", "-c", _text(t, "d.yaml", DEPLOYMENT.encode("utf-16"))],
     "not UTF-8 text (UTF-16"),
    ("deployment-duplicate",
     lambda t: ["infra", "render", "-c", _text(t, "d.yaml", DEPLOYMENT + "tier: 2000\n")],
     "duplicate key 'tier'"),
    ("deployment-bool-tier",
     lambda t: ["infra", "render", "-c",
                _text(t, "d.yaml", DEPLOYMENT.replace("tier: 2000", "tier: true"))],
     "tier: must be a number, not true/false"),
    ("deployment-deep", lambda t: ["infra", "render", "-c", _text(t, "d.yaml", DEEP_YAML)],
     "nested deeper"),
    ("deployment-fifo", lambda t: ["infra", "render", "-c", _fifo(t, "d.yaml")],
     "not a regular file"),
    ("deployment-endless",
     lambda t: ["infra", "render", "-c", _sparse(t, "d.yaml", 64 << 20)], "too large"),
    # run records
    ("record-array", lambda t: ["report", _record(t, "[1, 2]")], "run.json is not a JSON object"),
    ("record-wrong-shape", lambda t: ["report", _record(t, '{"slos": "x"}')], "slos: "),
    ("record-bad-outcome", lambda t: ["report", _record(t, '{"outcome": 3}')], "outcome: "),
    ("record-not-utf8", lambda t: ["report", _record(t, b"\xff\xfe\x00{")], "not UTF-8 text"),
    ("record-deep", lambda t: ["report", _record(t, DEEP_JSON)], "invalid JSON: nested too deeply"),
    ("record-run-json-dir", lambda t: ["report", _record(t)], "is a directory"),
    ("record-run-json-fifo", lambda t: ["report", _record(t, fifo=True)], "not a regular file"),
    ("record-not-a-dir", lambda t: ["report", _text(t, "x.txt", "x")], "not a"),
    # ltng reports
    ("ltng-not-a-report", lambda t: ["import", "ltng", _text(t, "r.json", "[1]")],
     "not an ltng report"),
    ("ltng-deep", lambda t: ["import", "ltng", _text(t, "r.json", DEEP_JSON)],
     "nested too deeply"),
    ("ltng-utf16",
     lambda t: ["import", "ltng", _text(t, "r.json", '{"Label": "x"}'.encode("utf-16"))],
     "not UTF-8 text"),
    ("ltng-corrupt-gzip", lambda t: ["import", "ltng", _text(t, "r.json.gz", b"\x1f\x8bxxxx")],
     "corrupt gzip"),
    ("ltng-fifo", lambda t: ["import", "ltng", _fifo(t, "r.json")], "not a regular file"),
    ("ltng-bad-times",
     lambda t: ["import", "ltng", _text(t, "r.json", '{"Label": "x", "AvgAPITimes": [1]}')],
     "AvgAPITimes: expected an object"),
    # files mmload writes
    ("seed-overwrite", lambda t: ["seed", "--users", "3", "--out", _text(t, "pop.jsonl", "keep")],
     "--out: exists: pass --force"),
    ("sim-profile-dup",
     lambda t: ["sim", "--profile-file", _text(t, "p.yaml", "bcrypt_cost: 4\nbcrypt_cost: 5\n")],
     "duplicate key 'bcrypt_cost'"),
    ("sim-flag-inf",
     lambda t: ["sim", "--port", "0", "--no-metrics", "--ws-auth-timeout", "inf"],
     "--ws-auth-timeout: must be a finite number"),
]


def _gzip_bomb(tmp: Path, size: int) -> str:
    p = tmp / "bomb.json.gz"
    with gzip.open(p, "wb", compresslevel=9) as fh:
        fh.write(b" " * size)
    return str(p)


@pytest.fixture
def tmp(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


@pytest.mark.parametrize(("build", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line(tmp: Path, build: Case, says: str) -> None:
    args = build(tmp)
    code, out, err = run_inprocess(args)
    lines = err.strip().splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("mmload: error: "), err
    assert says in lines[0], lines[0]
    assert "Traceback" not in err + out


def test_seed_overwrites_only_with_force(tmp_path: Path) -> None:
    out = tmp_path / "pop.jsonl"
    out.write_text("keep")
    assert run_inprocess(["seed", "--users", "3", "--out", str(out)])[0] == 2
    assert out.read_text() == "keep"
    code, _, err = run_inprocess(["seed", "--users", "3", "--out", str(out), "--force"])
    assert code == 0, err
    assert out.read_text().startswith('{"type":"version"')


def test_gzip_bomb_is_refused_before_it_fills_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmload.report import ltng

    monkeypatch.setattr(ltng, "MAX_REPORT_BYTES", 1 << 20)  # the real limit is 1 GiB
    bomb = _gzip_bomb(tmp_path, 4 << 20)
    assert os.path.getsize(bomb) < 64 << 10
    code, _, err = run_inprocess(["import", "ltng", bomb])
    assert code == 2, err
    assert "too large: over 1,048,576 bytes uncompressed" in err
