"""The CLI's contract: help, version, and one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from mmload import __version__
from mmload.config.loader import load_model
from mmload.errors import UserError
from tests.conftest import run_cli


def test_version_and_help() -> None:
    out = run_cli("--version")
    assert out.returncode == 0
    assert __version__ in out.stdout
    out = run_cli("--help")
    assert out.returncode == 0
    assert "Usage: mmload" in out.stdout


def test_unknown_flag_is_one_line_exit_2() -> None:
    out = run_cli("--no-such-flag")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "--no-such-flag" in lines[0]
    assert "Traceback" not in out.stderr


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    port: int = Field(8065, ge=1, le=65535)


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    inner: _Inner = _Inner()
    items: list[_Inner] = []


def test_loader_names_file_and_field_path(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("name: a\nitems:\n  - port: 1\n  - port: 70000\n")
    with pytest.raises(UserError) as exc:
        load_model(_Outer, f)
    line = str(exc.value)
    assert line.startswith(f"{f}: items[1].port: ")
    assert "65535" in line


def test_loader_unknown_field_and_bad_yaml(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("name: a\ninner: {prot: 1}\n")
    with pytest.raises(UserError, match=r"inner\.prot: unknown field"):
        load_model(_Outer, f)
    f.write_text("name: [unclosed\n")
    with pytest.raises(UserError, match="invalid YAML"):
        load_model(_Outer, f)
    with pytest.raises(UserError, match="file not found"):
        load_model(_Outer, tmp_path / "missing.yaml")
