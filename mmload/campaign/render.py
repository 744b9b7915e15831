"""The campaign's Markdown documents, through Jinja2 templates (Markdown: no autoescape)."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2


def users(value: float | None) -> str:
    """Supported users for a reader: 17,128 / 216.67 (whole numbers without decimals)."""
    if value is None:
        return "-"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def usd(value: float | None) -> str:
    """Dollars per hour: $3.06."""
    return "-" if value is None else f"${value:,.2f}"


def pct(value: float | None) -> str:
    """A percentage with one decimal, or a dash."""
    return "-" if value is None else f"{value:.1f} %"


def cell(value: object) -> str:
    """A Markdown table cell: pipes escaped, on one line."""
    return str(value).replace("|", "\\|").replace("\n", " ")


@cache
def environment() -> jinja2.Environment:
    """Markdown templates of ``mmload/campaign/templates``; values go through the filters."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mmload.campaign", "templates"),
        autoescape=jinja2.select_autoescape(["html", "html.j2"], default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(users=users, usd=usd, pct=pct, cell=cell)
    return env


def render(template: str, **context: Any) -> str:
    """One template rendered with ``context``."""
    return environment().get_template(template).render(**context)
