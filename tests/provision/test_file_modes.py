"""The working directory is private: 0700, and the state, its backup, the plan, outputs and logs
0600 — with the real terraform CLI (a configuration without providers: no download, no AWS)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmload.config.deployment import Deployment
from mmload.provision.render import render
from mmload.provision.terraform import TerraformDriver
from tests.provision.conftest import OPERATOR, require_tools, tf_env


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """A usual umask (022): what terraform and Python would write 0644 under."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_state_plan_outputs_and_logs_are_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tools()
    for key, value in tf_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    work = tmp_path / "w"
    work.mkdir(mode=0o755)
    (work / "main.tf").write_text(
        'terraform {\n  backend "local" {\n    path = "terraform.tfstate"\n  }\n}\n'
        'output "mmload" {\n  value = { deployment = "x" }\n}\n'
    )
    # A state left world-readable by an older mmload is tightened on the next run.
    (work / "terraform.tfstate.backup").write_text("{}")
    (work / "terraform.tfstate.backup").chmod(0o644)
    driver = TerraformDriver(work)
    assert mode(work) == 0o700
    assert mode(work / "terraform.tfstate.backup") == 0o600
    driver.init()
    driver.plan()
    assert mode(work / "tfplan") == 0o600
    assert mode(work / "tfplan.summary.json") == 0o600
    driver.apply()
    assert mode(work / "terraform.tfstate") == 0o600
    assert mode(work / "outputs.json") == 0o600
    assert mode(work / ".terraform") == 0o700
    assert mode(work / "logs") == 0o700
    logs = list((work / "logs").iterdir())
    assert logs and all(mode(p) == 0o600 for p in logs)
    driver.plan()  # a second plan over an existing state
    assert mode(work / "tfplan") == 0o600 and mode(work / "terraform.tfstate") == 0o600


def test_render_makes_the_working_directory_private(tmp_path: Path) -> None:
    dep = Deployment(
        name="mm-modes",
        tier=2000,
        operator_cidrs=[OPERATOR],
        working_dir=str(tmp_path / "deployments"),
    )
    work = tmp_path / "deployments" / "mm-modes"
    render(dep, work)
    assert mode(tmp_path / "deployments") == 0o700
    assert mode(work) == 0o700
    assert mode(work / "id_ed25519") == 0o600
    work.chmod(0o755)  # loosened by hand: the next render tightens it again
    render(dep, work)
    assert mode(work) == 0o700
