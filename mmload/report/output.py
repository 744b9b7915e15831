"""Write a view's formats into --out DIR, or one format to stdout (the only I/O of reports)."""

from __future__ import annotations

from pathlib import Path

import click

from mmload.config.report import ReportOptions
from mmload.errors import UserError
from mmload.files import write_atomic
from mmload.report import formats as fmts
from mmload.report.views import View


def parse_formats(value: str | None, out: str | None, opt: ReportOptions) -> list[str] | None:
    """``md,html`` -> ["md", "html"]; None means every format the view has (--out alone)."""
    if not value:
        return None if out else [opt.stdout_format]
    names = [f.strip().lower() for f in value.split(",") if f.strip()]
    bad = [f for f in names if f not in fmts.NAMES]
    if bad or not names:
        raise UserError(
            f"unknown format {', '.join(bad) or value!r} (choose from {', '.join(fmts.NAMES)})",
            source="command line",
            field="--format",
        )
    if len(names) > 1 and not out:
        raise UserError(
            "several formats need --out DIR (or ask for one format to print it)",
            source="command line",
            field="--format",
        )
    return list(dict.fromkeys(names))


def emit(view: View, formats: list[str] | None, out: str | None) -> list[Path]:
    """Render the formats asked for (None: all the view has); write them into ``out``, or
    print the single one."""
    have = fmts.supported(view)
    wanted = have if formats is None else formats
    missing = [f for f in wanted if f not in have]
    if missing:
        raise UserError(
            f"format {missing[0]} is not available for this command (it has {', '.join(have)})",
            source="command line",
            field="--format",
        )
    if not out:
        click.echo(fmts.render(view, wanted[0]), nl=False)
        return []
    out_dir = Path(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create directory: {exc.strerror}", source=str(out_dir)) from None
    if not out_dir.is_dir():
        raise UserError("not a directory", source=str(out_dir))
    written = []
    for f in wanted:
        dest = out_dir / f"{view.stem}.{fmts.suffix(f)}"
        write_atomic(dest, fmts.render(view, f))
        written.append(dest)
    return written
