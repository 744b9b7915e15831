"""The lifecycle commands' contract, in process: help, one-line exit-2 errors for bad input,
one-line exit-1 errors when AWS cannot be reached, and never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmload.cli import main
from mmload.net import free_port

COMMANDS = ("up", "preflight", "status", "down", "sweep")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


def deployment(tmp_path: Path, port: int) -> str:
    path = tmp_path / "deployment.yaml"
    path.write_text(
        "name: mm-cli\ntier: 200\noperator_cidrs: [203.0.113.7/32]\n"
        f"working_dir: {tmp_path / 'work'}\naws: {{endpoint_url: 'http://127.0.0.1:{port}'}}\n"
    )
    return str(path)


@pytest.mark.parametrize("command", COMMANDS)
def test_help(capsys, command: str) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and f"Usage: mmload {command}" in out


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (("up", "-c", "{dep}", "--only", "preflight,apply"), "--only: unknown step 'apply'"),
        (("up", "-c", "{dep}", "--only", "provision"), "--yes"),  # no terminal: --yes needed
        (("down", "-c", "{dep}"), "--yes"),
        (("status", "-c", "{missing}"), "missing.yaml"),
        (("preflight", "-c", "{bad}"), "tier"),
        (("sweep", "--region", "moon-1"), "--region"),
        (("sweep", "--endpoint-url", "ftp://x"), "--endpoint-url"),
        (("up", "-c", "{dep}", "--bogus"), "--bogus"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, tmp_path: Path, argv, names: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: mm-cli\ntier: 7\noperator_cidrs: [203.0.113.7/32]\n")
    values = {"dep": deployment(tmp_path, 9), "missing": str(tmp_path / "missing.yaml")}
    values["bad"] = str(bad)
    code, _, err = run(capsys, *(a.format(**values) for a in argv))
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and names in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "work" / "mm-cli").exists()  # refused before anything was written


def test_unreachable_aws_is_one_line_exit_1(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    port = free_port()  # nothing listens there
    code, _, err = run(capsys, "status", "-c", deployment(tmp_path, port))
    assert code == 1 and err.startswith("mmload: error: status: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    code, _, err = run(capsys, "sweep", "--endpoint-url", f"http://127.0.0.1:{port}")
    assert code == 1 and err.startswith("mmload: error: sweep: ") and "Traceback" not in err
