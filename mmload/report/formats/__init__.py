"""The formats a :class:`~mmload.report.views.View` is written in: one module per format.

Each module has ``SUFFIX`` (the file name ending in ``--out DIR``), ``supports(view)`` and
``render(view) -> str``. The format names are ``mmload.config.report.Format``; adding a format is
adding its module here and its name there.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import get_args

from mmload.config.report import Format
from mmload.report.views import View

NAMES: tuple[str, ...] = get_args(Format)


def module(name: str) -> ModuleType:
    """The module of one format (imported on first use: html pulls in plotly)."""
    if name not in NAMES:
        raise KeyError(name)
    return importlib.import_module(f"{__name__}.{name}")


def suffix(name: str) -> str:
    """``junit`` -> ``junit.xml``."""
    return module(name).SUFFIX


def supported(view: View) -> list[str]:
    """The formats ``view`` can be written in, in the order of NAMES."""
    return [n for n in NAMES if module(n).supports(view)]


def render(view: View, name: str) -> str:
    """``view`` as text in format ``name``."""
    return module(name).render(view)
