"""The view-model seam: every report (run, compare, ceiling, ltng import) is built as a
:class:`View`, and every format (``mmload.report.formats``) renders a View.

A view is data only: a title, an optional verdict :class:`Banner`, :class:`Section` s of
blocks (:class:`Table`, :class:`Text`, :class:`Figure`), the JSON document, and the
:class:`Check` s a JUnit file is made of. Markdown and HTML render the same sections (figures are
HTML-only; a block can be restricted to one of them with ``media``), so a new plot is one
:class:`Figure` in a view, and a new format is one module in ``formats/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import plotly.graph_objects as go

Media = Literal["all", "md", "html"]


@dataclass
class Banner:
    """The verdict at the top: ``status`` (PASS, FAIL, NO SLOS…), a headline and the reasons."""

    status: str
    headline: str
    reasons: list[str] = field(default_factory=list)

    @property
    def tone(self) -> str:
        """pass / fail / neutral, for colouring."""
        return {"PASS": "pass", "FAIL": "fail"}.get(self.status, "neutral")


@dataclass
class Table:
    """A table; ``align`` is one letter per column (``l``/``r``); ``kv``: a label/value list."""

    headers: list[str]
    rows: list[list[Any]]
    align: str | None = None
    kv: bool = False
    media: Media = "all"

    @property
    def alignment(self) -> str:
        """The column alignment, numbers right by default."""
        return self.align or (
            "l" * len(self.headers) if self.kv else "l" + "r" * (len(self.headers) - 1)
        )


@dataclass
class Text:
    """A paragraph; ``note`` paragraphs are set apart (warnings, caveats)."""

    text: str
    note: bool = False
    media: Media = "all"


@dataclass
class Figure:
    """A plot: ``id`` names it in the page (``data-figure``); ``build`` makes the plotly figure
    only when a format draws it (plotly is not imported for md or json)."""

    id: str
    title: str
    build: Callable[[], go.Figure]
    media: Media = "html"


Block = Table | Text | Figure


@dataclass
class Section:
    """A titled group of blocks."""

    title: str | None
    blocks: list[Block] = field(default_factory=list)
    media: Media = "all"
    level: int = 2  # heading level: 2 for a section, 3 for a sub-section


@dataclass
class Check:
    """One JUnit test case: ``passed`` True, False (a failure) or None (skipped: not measured)."""

    name: str
    passed: bool | None
    message: str


@dataclass
class View:
    """Everything one report shows, in every format."""

    stem: str  # the file name written into --out: report, compare, ceiling, ltng-import
    title: str
    document: Any  # the JSON format (an object, or a list for ceiling)
    banner: Banner | None = None
    sections: list[Section] = field(default_factory=list)
    checks: list[Check] | None = None  # JUnit cases; None: the view has no JUnit format
    suite: str = "mmload"

    @property
    def formats(self) -> list[str]:
        """The formats this view can be written in."""
        return ["md", "html", "json"] + (["junit"] if self.checks is not None else [])

    def figures(self) -> list[Figure]:
        """Every figure, in page order."""
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]
