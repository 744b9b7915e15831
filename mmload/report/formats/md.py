"""Markdown, from the view's sections through a Jinja2 template (figures are HTML-only)."""

from __future__ import annotations

from functools import cache

import jinja2

from mmload.report.views import View

SUFFIX = "md"


def supports(view: View) -> bool:
    """Every view has a Markdown form."""
    return True


def cell(value: object) -> str:
    """A table cell: pipes escaped, on one line."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def separator(align: str) -> str:
    """The header separator row of a table."""
    return "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |"


@cache
def environment() -> jinja2.Environment:
    """Markdown is not HTML: no autoescape; cells go through the ``cell`` filter."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mmload.report", "templates"),
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["cell"] = cell
    env.filters["separator"] = separator
    return env


def render(view: View) -> str:
    """The view as Markdown."""
    return environment().get_template("report.md.j2").render(view=view)
