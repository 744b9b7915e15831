"""``working_dir: ~/x`` means the same folder to provision, configure and the lifecycle.

The rule lives in one place (``Deployment.workdir``); each stage is driven here as far as the
folder matters: provision renders into it, configure and ``mmload ssh``/``db`` read the
outputs.json inside it (a wrong folder would say "not found" naming another path).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from mmload.config.deployment import load_deployment
from mmload.configure.progress import PlainReporter
from mmload.configure.run import configure
from mmload.errors import UserError
from mmload.lifecycle.hosts import reach
from mmload.provision.deploy import prepare
from tests.configure.conftest import OUTPUTS

NAME = "mm-2k"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder for ``~``, and a different current directory."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return home


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "deployment.yaml"
    data = {"name": NAME, "tier": 2000, "operator_cidrs": ["198.51.100.7/32"], "working_dir": "~/x"}
    data["mattermost"] = {"unlicensed": True}  # the license gate is not what this test is about
    path.write_text(yaml.safe_dump(data))
    return path


def write_outputs(workdir: Path, deployment: str) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "outputs.json"
    path.write_text(json.dumps({**OUTPUTS, "deployment": deployment}))
    return path


def test_the_rule_expands_the_home_folder(home: Path, config: Path) -> None:
    assert load_deployment(config).workdir == home / "x" / NAME


def test_provision_renders_into_the_expanded_folder(home: Path, config: Path) -> None:
    prepared = prepare(config)
    assert prepared.rendered.workdir == home / "x" / NAME
    assert prepared.driver.workdir == home / "x" / NAME
    assert (home / "x" / NAME / "id_ed25519").is_file()
    assert any((home / "x" / NAME).glob("*.tf"))
    assert not (Path.cwd() / "~").exists()


def test_configure_reads_outputs_from_the_expanded_folder(home: Path, config: Path) -> None:
    outputs = write_outputs(home / "x" / NAME, deployment="mm-other")
    with pytest.raises(UserError) as err:
        configure(
            config, outputs_path=None, tags=[], skip_tags=[], reporter=PlainReporter(io.StringIO())
        )
    assert err.value.source == str(outputs) and err.value.field == "deployment"


def test_the_lifecycle_reads_outputs_from_the_expanded_folder(home: Path, config: Path) -> None:
    outputs = write_outputs(home / "x" / NAME, deployment="mm-other")
    with pytest.raises(UserError) as err:
        reach(config)
    assert err.value.source == str(outputs) and err.value.field == "deployment"
