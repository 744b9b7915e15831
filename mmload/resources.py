"""Where the non-Python parts live: Terraform templates, Ansible roles, built-in scenarios.

They sit at the top of the source tree (``terraform/``, ``ansible/``, ``scenarios/``) and are
shipped inside the package as ``mmload/_share/<name>`` (symlinks in the checkout, copies in a
wheel), so an editable install and a ``pip install mmload`` find them the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARE = Path(__file__).resolve().parent / "_share"


def resource_dir(name: str, env_var: str | None = None) -> Path:
    """The folder ``name`` (terraform, ansible or scenarios); ``env_var`` overrides it."""
    override = os.environ.get(env_var) if env_var else None
    return Path(override) if override else (SHARE / name).resolve()
