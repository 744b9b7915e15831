"""The action table: load-test-ng's steady-state actions, their frequencies and their handlers.

The data is ``actions.yaml`` beside this module (each action's relative frequency, CreatePost = 1,
and the ``MattermostUser`` method that performs it, or null where mmload does not implement it
yet). The load engine picks from it (``mmload.load.actions.ActionPicker``); scenarios override
weights by name.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import Field

from mmload.config.base import StrictModel
from mmload.config.loader import read_yaml, validate_model

ACTIONS_FILE = Path(__file__).with_name("actions.yaml")


class Action(StrictModel):
    """One entry of the table: name, relative frequency and the user method that performs it."""

    name: str
    weight: float = Field(ge=0)
    handler: str | None = None


class ActionEntry(StrictModel):
    """An action as written in actions.yaml (its name is the key)."""

    weight: float = Field(ge=0)
    handler: str | None = Field(description="MattermostUser method; null: not implemented")


class ActionTable(StrictModel):
    """The whole of actions.yaml."""

    source: str
    actions: dict[str, ActionEntry] = Field(min_length=1)


@cache
def load_table() -> tuple[Action, ...]:
    """Every action of actions.yaml, implemented or not, in the file's order."""
    table = validate_model(ActionTable, read_yaml(ACTIONS_FILE), str(ACTIONS_FILE))
    return tuple(
        Action(name=name, weight=entry.weight, handler=entry.handler)
        for name, entry in table.actions.items()
    )
