"""Load YAML files into pydantic models and turn validation errors into one-line UserErrors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from mmload.errors import UserError

M = TypeVar("M", bound=BaseModel)


def field_path(loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location as ``a.b[2].c``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def first_error(err: ValidationError, source: str) -> UserError:
    """The first validation error of ``err`` as a UserError naming file and field."""
    e = err.errors(include_url=False)[0]
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling)"
    return UserError(msg, source=source, field=field_path(tuple(e["loc"])))


def validate_model(model: type[M], data: Any, source: str) -> M:
    """Validate ``data`` as ``model``; on error raise a UserError naming ``source``."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise first_error(err, source) from None


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing file or a syntax error is a UserError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError("file not found", source=str(p)) from None
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", source=str(p)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(parse)"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UserError(f"invalid YAML: {problem}", source=str(p), field=where) from None
    return {} if data is None else data


def load_model(model: type[M], path: str | Path) -> M:
    """Read ``path`` as YAML and validate it as ``model``."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise UserError("expected a mapping at the top level", source=str(path))
    return validate_model(model, data, str(path))
