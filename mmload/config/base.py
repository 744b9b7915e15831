"""The one base of every config model: unknown fields are errors, and a model is a value.

A misspelt key in a YAML file or a flag fails validation instead of being ignored; a loaded model
is frozen (change it with ``model_copy(update=...)``), so shared defaults such as the named
simulator profiles or the cached catalog cannot be altered by accident.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Base of the config models: ``extra="forbid"``, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
