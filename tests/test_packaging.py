"""The wheel carries the non-Python parts (templates, roles, scenarios) that the stages need."""

from __future__ import annotations

import zipfile
from pathlib import Path

from mmload.configure.wheel import build_wheel
from mmload.resources import resource_dir
from tests.conftest import REPO


def test_resource_dirs_resolve_to_the_source_tree_in_a_checkout() -> None:
    assert resource_dir("terraform") == REPO / "terraform"
    assert resource_dir("ansible") == REPO / "ansible"
    assert resource_dir("scenarios") == REPO / "scenarios"


def test_env_override(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MMLOAD_TEMPLATE_DIR", str(tmp_path))
    assert resource_dir("terraform", "MMLOAD_TEMPLATE_DIR") == tmp_path


def test_wheel_ships_templates_roles_and_scenarios(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    assert wheel is not None
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        *(f"mmload/_share/{p.relative_to(REPO)}" for p in (REPO / "terraform").glob("*.j2")),
        *(
            f"mmload/_share/{p.relative_to(REPO)}"
            for p in (REPO / "terraform").glob("*.rules.yaml")  # each component's rules
        ),
        "mmload/config/components.yaml",  # the component registry
        "mmload/_share/ansible/site.yml",
        *(f"mmload/_share/{p.relative_to(REPO)}" for p in (REPO / "scenarios").glob("*.yaml")),
        *(
            f"mmload/_share/{p.relative_to(REPO)}"
            for p in (REPO / "ansible" / "roles").rglob("*")
            if p.is_file()
        ),
    }
    assert len(expected) > 20
    assert expected <= names, sorted(expected - names)[:5]
