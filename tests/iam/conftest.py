"""The shipped IAM documents and the Service Authorization Reference, for the IAM tests.

parliament lives in its own tool environment (``make tools``: ``.tools/parliament``) because it
imports ``pkg_resources``, which the project's pinned setuptools no longer ships. Its bundled
``iam_definition.json`` (every action's access level, resource types and condition keys) is
read from there: it is offline data, no network needed.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.iam.aws_calls import Definitions

CATALOG = REPO / "mmload" / "catalog"
POLICIES = {
    "main": "iam-policy.json",
    "readonly": "iam-policy-readonly.json",
    "boundary": "iam-boundary.json",
}
# The policy as shipped before issue 10/12 (0.1.0): the coverage test shows what it missed.
BEFORE_ISSUE_10 = Path(__file__).with_name("data") / "iam-policy-0.1.0.json"
PARLIAMENT_ENV = REPO / ".tools" / "parliament"
PARLIAMENT = PARLIAMENT_ENV / "bin" / "parliament"


def load_policy(name: str, state_bucket: str = "", lock_table: str = "") -> dict:
    """A shipped policy; the state-backend placeholders replaced when names are given."""
    text = (CATALOG / POLICIES.get(name, name)).read_text(encoding="utf-8")
    if state_bucket:
        text = text.replace("REPLACE-state-bucket", state_bucket)
    if lock_table:
        text = text.replace("REPLACE-lock-table", lock_table)
    return json.loads(text)


def require_parliament() -> Path:
    if not PARLIAMENT.exists():
        pytest.fail(f"parliament not found at {PARLIAMENT}: run `make tools`")
    return PARLIAMENT


@lru_cache(maxsize=1)
def _definitions(path: str) -> Definitions:
    return Definitions(json.loads(Path(path).read_text(encoding="utf-8")))


def definitions() -> Definitions:
    """The Service Authorization Reference bundled with parliament."""
    found = sorted(PARLIAMENT_ENV.glob("lib/python3*/site-packages/parliament/iam_definition.json"))
    if not found:
        pytest.fail(
            f"parliament's iam_definition.json not found under {PARLIAMENT_ENV}: run `make tools`"
        )
    return _definitions(str(found[-1]))
