"""Small helpers shared by the command modules: consoles and flag-to-model validation."""

from __future__ import annotations

import sys
from typing import Any, TypeVar

from pydantic import BaseModel
from rich.console import Console

from mmload.config.loader import validate_model
from mmload.errors import UserError

M = TypeVar("M", bound=BaseModel)

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def interactive() -> bool:
    """True when stdout is a terminal: show live progress; otherwise stay quiet and plain."""
    return sys.stdout.isatty()


def model_from_flags(model: type[M], flags: dict[str, Any]) -> M:
    """Validate command-line flags as ``model``; errors name the flag, e.g. ``--users``."""
    data = {k: v for k, v in flags.items() if v is not None}
    try:
        return validate_model(model, data, "command line")
    except UserError as exc:
        flag = exc.field.split(".")[0] if exc.field else ""
        if flag in model.model_fields:
            exc = UserError(exc.message, source="command line", field="--" + flag.replace("_", "-"))
        raise exc from None
