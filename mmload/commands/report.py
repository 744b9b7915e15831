"""CLI commands of the report stage: report, import ltng, compare, ceiling."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, get_args

import click

from mmload.commands.common import default_of, err_console, interactive, model_from_flags
from mmload.config.report import Format, ReportOptions
from mmload.errors import RunFailed, UserError

if TYPE_CHECKING:
    from mmload.record import RunVerdict

# The reporter's modules (pandas, scipy, plotly) are imported inside each command, so that
# every other `mmload` command starts without paying for them.

FORMAT_HELP = (
    f"comma-separated: {', '.join(get_args(Format))} (default: "
    f"{default_of(ReportOptions, 'stdout_format')} to stdout; with --out, every format the "
    "command has)"
)


def format_options(f: Callable) -> Callable:
    """--format and --out, shared by every report command."""
    f = click.option("--out", "-o", "out", metavar="DIR", help="write the formats into DIR")(f)
    return click.option("--format", "-f", "fmt", metavar="LIST", help=FORMAT_HELP)(f)


def identity_options(f: Callable) -> Callable:
    """--architecture and --label overrides for ltng data and records."""
    f = click.option(
        "--label", metavar="NAME", help="build/ESR label (ltng: from config/deployer.json)"
    )(f)
    return click.option(
        "--architecture",
        metavar="NAME",
        help="architecture (ltng: the run label without its repeat number)",
    )(f)


@contextmanager
def status(message: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr while reading runs (only on a terminal)."""
    if not interactive():
        yield lambda _item: None
        return
    with err_console.status(message) as st:
        yield lambda item: st.update(f"{message} {item}")


def announce(paths: list[Path]) -> None:
    """Tell the user where the files went (stderr, so stdout stays clean)."""
    for p in paths:
        click.echo(f"wrote {p}", err=True)


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@format_options
@click.option(
    "--fail-on-slo",
    is_flag=True,
    help="exit 1 (after writing) unless the verdict is PASS: an SLO failed or could not be "
    "measured, or the run did not complete",
)
def report_cmd(run_dir: Path, fmt: str | None, out: str | None, fail_on_slo: bool) -> None:
    """Report one run: per-endpoint latency from HDR histograms, errors, windows, Sev0, SLOs."""
    from mmload.report.output import emit, parse_formats
    from mmload.report.runs import build_run_report
    from mmload.report.views import run

    opt = ReportOptions()
    formats = parse_formats(fmt, out, opt)
    with status("reading run record"):
        rep = build_run_report(run_dir)
    announce(emit(run.view(rep, opt.top_endpoints), formats, out))
    if fail_on_slo:
        gate(rep.verdict)


def gate(verdict: RunVerdict) -> None:
    """Raise RunFailed when the verdict is FAIL: an SLO failed or could not be measured, or
    the run did not complete (for CI)."""
    if verdict.status == "FAIL":
        raise RunFailed("FAIL: " + "; ".join(verdict.reasons))


@click.group("import")
def import_group() -> None:
    """Import results of other load-test tools into the reporter's model."""


@import_group.command("ltng")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@identity_options
@format_options
def import_ltng(
    paths: tuple[Path, ...],
    architecture: str | None,
    label: str | None,
    fmt: str | None,
    out: str | None,
) -> None:
    """Read `ltctl report generate` JSON files (plain or .gz, with results.txt if beside them)."""
    from mmload.report.output import emit, parse_formats
    from mmload.report.sources import load_runs
    from mmload.report.views import imports

    opt = ReportOptions()
    formats = parse_formats(fmt, out, opt)
    with status("importing") as progress:
        runs = load_runs(
            list(paths),
            architecture,
            label,
            detail="full" if formats is None or "html" in formats else "timings",
            progress=progress,
        )
    ltng = [r for r in runs if r.kind == "ltng"]
    if len(ltng) != len(runs):
        click.echo(f"skipped {len(runs) - len(ltng)} mmload run record(s): not ltng data", err=True)
    if not ltng:
        raise UserError("no ltng reports among the paths", source=", ".join(map(str, paths)))
    announce(emit(imports.view(ltng), formats, out))


def thresholds(
    noise: float | None, min_pct: float | None, min_ms: float | None, min_samples: int | None
) -> ReportOptions:
    """ReportOptions with the compare flags given; a bad value names its flag."""
    flags = {
        "noise_pct": noise,
        "min_delta_pct": min_pct,
        "min_delta_ms": min_ms,
        "min_samples": min_samples,
    }
    return model_from_flags(ReportOptions, flags)


def _default(field: str) -> str:
    return f"{default_of(ReportOptions, field):g}"


@click.command("compare")
@click.argument("sides", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--base-architecture", metavar="NAME", help="override the base side's architecture")
@click.option("--new-architecture", metavar="NAME", help="override the new side's architecture")
@click.option("--base-label", metavar="NAME", help="override the base side's label")
@click.option("--new-label", metavar="NAME", help="override the new side's label")
@click.option(
    "--noise-pct",
    type=float,
    help=f"supported users: the noise band, ± % ({_default('noise_pct')})",
)
@click.option(
    "--min-delta-pct",
    type=float,
    help=f"hide endpoint changes under this % ({_default('min_delta_pct')})",
)
@click.option(
    "--min-delta-ms",
    type=float,
    help=f"hide endpoint changes under this many ms ({_default('min_delta_ms')})",
)
@click.option(
    "--min-samples",
    type=int,
    help=f"flag, not judge, endpoints with fewer requests ({_default('min_samples')})",
)
@format_options
def compare_cmd(
    sides: tuple[Path, ...],
    base_architecture: str | None,
    new_architecture: str | None,
    base_label: str | None,
    new_label: str | None,
    noise_pct: float | None,
    min_delta_pct: float | None,
    min_delta_ms: float | None,
    min_samples: int | None,
    fmt: str | None,
    out: str | None,
) -> None:
    """Compare BASE and NEW: each a run, an ltng report, a folder of repeats, or a pattern.

    \b
    mmload compare runs/20261127T0431Z-ceiling-esr-10.11 runs/20261128T0902Z-ceiling-esr-11.7
    mmload compare base-runs/ new-runs/
    mmload compare runs/*-esr-10.11 runs/*-esr-11.7   (the shell's list is split by label)
    """
    from mmload.report.compare import compare as compare_sides
    from mmload.report.output import emit, parse_formats
    from mmload.report.sources import load_runs, split_sides
    from mmload.report.views import compare as compare_view

    opt = thresholds(noise_pct, min_delta_pct, min_delta_ms, min_samples)
    formats = parse_formats(fmt, out, opt)
    base, new = split_sides(list(sides))
    with status("reading") as progress:
        b = load_runs(base, base_architecture, base_label, progress=progress)
        n = load_runs(new, new_architecture, new_label, progress=progress)
    c = compare_sides(b, n, opt)
    announce(emit(compare_view.view(c), formats, out))


@click.command("ceiling")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@identity_options
@format_options
def ceiling_cmd(
    paths: tuple[Path, ...],
    architecture: str | None,
    label: str | None,
    fmt: str | None,
    out: str | None,
) -> None:
    """Supported users per architecture and label over repeats, and the trend across labels."""
    from mmload.report.ceiling import ceiling_rows
    from mmload.report.output import emit, parse_formats
    from mmload.report.sources import load_runs
    from mmload.report.views import ceiling

    opt = ReportOptions()
    formats = parse_formats(fmt, out, opt)
    damaged: list[str] = []
    with status("reading") as progress:
        runs = load_runs(
            list(paths), architecture, label, detail="head", progress=progress, skipped=damaged
        )
    rows, skipped = ceiling_rows(runs)
    skipped = damaged + skipped
    for s in skipped:
        click.echo(f"skipped {s}", err=True)
    announce(emit(ceiling.view(rows, skipped), formats, out))


def register(group: click.Group) -> None:
    """Add this stage's commands to group."""
    group.add_command(report_cmd)
    group.add_command(import_group)
    group.add_command(compare_cmd)
    group.add_command(ceiling_cmd)
