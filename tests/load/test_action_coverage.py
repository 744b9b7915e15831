"""actions.yaml against load-test-ng's own action table (``../shared/datasets/ltng-actions``).

The shared CSV is ltng's ``getActionList`` at the commit its SOURCE.md names; actions.yaml must
be the same table (same names, same frequencies, the same commit in its ``source``) and mmload
must implement at least 99 % of its frequency mass.
"""

from __future__ import annotations

import csv
import re

import pytest

from mmload.config.actions import ACTIONS_FILE, load_table
from mmload.config.loader import read_yaml
from mmload.load.user import MattermostUser
from tests.conftest import SHARED

LTNG = SHARED / "datasets" / "ltng-actions"  # ../shared (MMLOAD_SHARED elsewhere)
MIN_COVERAGE = 0.99


def ltng_table() -> dict[str, float]:
    with (LTNG / "actions.csv").open(encoding="utf-8") as f:
        return {row["name"]: float(row["frequency"]) for row in csv.DictReader(f)}


def ltng_commit() -> str:
    found = re.search(r"commit ([0-9a-f]{40})", (LTNG / "SOURCE.md").read_text(encoding="utf-8"))
    assert found, "SOURCE.md names no commit"
    return found.group(1)


def test_actions_yaml_is_ltngs_table_at_its_commit() -> None:
    ltng = ltng_table()
    ours = {a.name: a.weight for a in load_table()}
    assert set(ours) == set(ltng), set(ours) ^ set(ltng)
    for name, freq in ltng.items():
        assert ours[name] == pytest.approx(freq), name
    assert ltng_commit() in read_yaml(ACTIONS_FILE)["source"]


def test_implemented_actions_cover_99_percent_of_ltngs_frequency_mass() -> None:
    ltng = ltng_table()
    implemented = {a.name for a in load_table() if a.handler}
    coverage = sum(f for n, f in ltng.items() if n in implemented) / sum(ltng.values())
    assert coverage >= MIN_COVERAGE, f"{coverage:.2%} of ltng's frequency mass"


def test_every_handler_is_a_method_of_the_user() -> None:
    for action in load_table():
        if action.handler:
            assert callable(getattr(MattermostUser, action.handler, None)), action
