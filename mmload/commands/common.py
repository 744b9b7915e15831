"""Small helpers shared by the command modules: consoles, `-c/--config`, flags to models."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TypeVar, get_args

import click
from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from rich.console import Console

from mmload.config.deployment import DEPLOYMENT_FILE
from mmload.config.loader import validate_model
from mmload.errors import UserError

M = TypeVar("M", bound=BaseModel)

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

# The one meaning of -c/--config across mmload: the deployment file.
CONFIG_OPTION = click.option(
    "-c",
    "--config",
    "config",
    default=DEPLOYMENT_FILE,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The deployment file.",
)


def interactive() -> bool:
    """True when stdout is a terminal: show live progress; otherwise stay quiet and plain."""
    return sys.stdout.isatty()


def default_of(model: type[BaseModel], field: str) -> Any:
    """The default of ``model.field``: CLI defaults and help texts read it from the model."""
    info = model.model_fields[field]
    if info.default is PydanticUndefined:
        if info.default_factory is None:
            raise KeyError(f"{model.__name__}.{field} has no default")
        return info.default_factory()  # type: ignore[call-arg]
    return info.default


def choices_of(model: type[BaseModel], field: str) -> list[str]:
    """The values a ``Literal`` field allows, for a ``click.Choice``."""
    return [str(v) for v in get_args(model.model_fields[field].annotation)]


def flag_name(field: str) -> str:
    """The flag of a model field: ``channels_per_team`` -> ``--channels-per-team``."""
    return "--" + field.replace("_", "-")


def model_from_flags(
    model: type[M], flags: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> M:
    """Validate command-line flags (field -> value; None: not given) as ``model``.

    An error names the flag: ``names[field]`` where a flag is not spelt like its field
    (``ws_auth_timeout_s`` is ``--ws-auth-timeout``), else :func:`flag_name`.
    """
    data = {k: v for k, v in flags.items() if v is not None}
    try:
        return validate_model(model, data, "command line")
    except UserError as exc:
        top = exc.field.split(".")[0].split("[")[0] if exc.field else ""
        if top in model.model_fields:
            flag = (names or {}).get(top) or flag_name(top)
            exc = UserError(exc.message, source="command line", field=flag)
        raise exc from None
