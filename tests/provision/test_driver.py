"""The Terraform driver: live line streaming, Terraform's own error text, logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmload.errors import RunFailed
from mmload.provision.terraform import TerraformDriver, error_text
from tests.provision.conftest import require_tools, tf_env


def test_lines_stream_while_the_command_runs(tmp_path: Path) -> None:
    """A stand-in binary (a shell script) prints a line, then waits until that line has reached
    the sink (which creates a file), then prints the next: without streaming it would never see
    the file. Ordering, not timing. Terraform itself is exercised in the other tests."""
    go = tmp_path / "first-line-seen"
    fake = tmp_path / "fake-terraform"
    fake.write_text(
        "#!/bin/sh\necho first\n"
        f"i=0; while [ ! -e '{go}' ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n"
        f"if [ -e '{go}' ]; then echo second; else echo not-streamed; fi\n"
    )
    fake.chmod(0o755)

    def sink(line: str) -> None:
        if line == "first":
            go.touch()

    driver = TerraformDriver(tmp_path, binary=str(fake), sink=sink)
    lines = driver.run("version")
    assert lines == ["first", "second"]
    logs = list((tmp_path / "logs").glob("*-version.log"))
    assert len(logs) == 1 and "first\nsecond\n# exit 0" in logs[0].read_text()


def test_failure_carries_terraforms_own_error_text(tmp_path: Path, monkeypatch) -> None:
    require_tools()
    for key, value in tf_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    work = tmp_path / "w"
    work.mkdir()
    (work / "main.tf").write_text('output "x" {\n  value = aws_instance.nope.id\n}\n')
    driver = TerraformDriver(work)
    driver.init()
    with pytest.raises(RunFailed) as err:
        driver.validate()
    text = str(err.value)
    assert "terraform validate failed" in text
    assert "Error: Reference to undeclared resource" in text and "aws_instance" in text


def test_error_text_falls_back_to_the_last_lines() -> None:
    assert error_text(["a", "", "b", "c"]) == "a\nb\nc"
    boxed = ["╷", "│ Error: Invalid thing", "│", "│ The thing is invalid.", "╵"]
    assert error_text(boxed) == "Error: Invalid thing The thing is invalid."
