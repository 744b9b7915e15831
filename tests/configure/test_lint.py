"""The playbook is lint-clean (production profile) and syntactically valid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mmload.configure.driver import ANSIBLE_DIR

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def test_ansible_lint_production_profile_reports_nothing() -> None:
    proc = subprocess.run(
        [str(BIN / "ansible-lint"), "--profile", "production", "--nocolor"],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failure(s), 0 warning(s)" in proc.stdout + proc.stderr


def test_syntax_check_passes() -> None:
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,", "site.yml"],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_only_collections_shipped_with_ansible() -> None:
    """Every module is ansible.builtin or from a collection in the `ansible` PyPI package."""
    import ansible_collections  # the collections the `ansible` package installs

    shipped = Path(next(iter(ansible_collections.__path__)))
    used = set()
    for path in ANSIBLE_DIR.rglob("*.yml"):
        for line in path.read_text().splitlines():
            token = line.strip().rstrip(":")
            if token.count(".") == 2 and token.replace(".", "").replace("_", "").isalnum():
                used.add(token)
    assert used, "no modules found"
    for fqcn in used:
        ns, coll, _ = fqcn.split(".")
        if ns == "ansible" and coll == "builtin":
            continue
        assert (shipped / ns / coll).is_dir(), f"{fqcn} is not shipped in the ansible package"
