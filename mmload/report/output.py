"""Write rendered formats into --out DIR, or one format to stdout (the only I/O of reports)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import click

from mmload.config.report import ReportOptions
from mmload.errors import UserError

SUFFIX = {"md": "md", "html": "html", "json": "json", "junit": "junit.xml"}
Renderers = dict[str, Callable[[], str]]


def parse_formats(value: str | None, out: str | None, opt: ReportOptions) -> list[str]:
    """``md,html`` -> ["md", "html"]; defaults depend on whether --out is given."""
    if not value:
        return list(opt.out_formats) if out else [opt.stdout_format]
    formats = [f.strip().lower() for f in value.split(",") if f.strip()]
    bad = [f for f in formats if f not in SUFFIX]
    if bad or not formats:
        raise UserError(
            f"unknown format {', '.join(bad) or value!r} (choose from md, html, json, junit)",
            source="command line",
            field="--format",
        )
    if len(formats) > 1 and not out:
        raise UserError(
            "several formats need --out DIR (or ask for one format to print it)",
            source="command line",
            field="--format",
        )
    return list(dict.fromkeys(formats))


def write_atomic(path: Path, text: str) -> None:
    """Write text via a temporary file and rename, so readers never see half a report."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def emit(stem: str, formats: list[str], out: str | None, renderers: Renderers) -> list[Path]:
    """Render each format; write ``<out>/<stem>.<suffix>`` or print the single one."""
    missing = [f for f in formats if f not in renderers]
    if missing:
        raise UserError(
            f"format {missing[0]} is not available for this command",
            source="command line",
            field="--format",
        )
    if not out:
        click.echo(renderers[formats[0]](), nl=False)
        return []
    out_dir = Path(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create directory: {exc.strerror}", source=str(out_dir)) from None
    if not out_dir.is_dir():
        raise UserError("not a directory", source=str(out_dir))
    written = []
    for f in formats:
        dest = out_dir / f"{stem}.{SUFFIX[f]}"
        write_atomic(dest, renderers[f]())
        written.append(dest)
    return written
