"""JSON: the view's document (each view defines its schema, e.g. ``mmload.report/1``)."""

from __future__ import annotations

from mmload.report.values import to_json
from mmload.report.views import View

SUFFIX = "json"


def supports(view: View) -> bool:
    """Every view has a JSON document."""
    return True


def render(view: View) -> str:
    """Stable, indented JSON."""
    return to_json(view.document)
