"""One self-contained HTML page per view, through a Jinja2 template with autoescape.

plotly.js is inlined once; each figure's JSON sits in a ``<script type="application/json">``
beside its ``<div data-figure="ID">`` and is drawn by the page's script, which then marks on the
div how many traces and data points Plotly drew (``data-traces``, ``data-points``), so a
headless browser check can tell a plot with data from an empty one.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from mmload.report.views import Figure, View

SUFFIX = "html"


def supports(view: View) -> bool:
    """Every view has an HTML page."""
    return True


@cache
def environment() -> jinja2.Environment:
    """HTML with autoescape on: every value from a record or a report is escaped."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("mmload.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "html.j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def figure_json(fig: Figure) -> Markup:
    """A figure as JSON that is safe inside ``<script>`` (``<``, ``>``, ``&`` escaped)."""
    import plotly.io as pio

    built = fig.build()
    built.update_layout(title=fig.title)
    return htmlsafe_json_dumps(built, dumps=lambda obj, **_: pio.to_json(obj, validate=False))


@cache
def plotly_js() -> Markup:
    """plotly.js itself (inlined: the page opens offline)."""
    from plotly.offline import get_plotlyjs

    return Markup(get_plotlyjs())  # plotly's own script, not data from a record


def render(view: View) -> str:
    """The view as one HTML page."""
    figures: dict[str, dict[str, Any]] = {}
    for i, fig in enumerate(view.figures()):
        if fig.id in figures:
            raise ValueError(f"two figures named {fig.id!r} in one view")
        figures[fig.id] = {"n": i, "json": figure_json(fig)}
    return (
        environment()
        .get_template("page.html.j2")
        .render(view=view, figures=figures, plotly_js=plotly_js() if figures else "")
    )
